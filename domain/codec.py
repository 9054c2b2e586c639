"""The only place events meet JSON bytes: encode for the log, decode from it, and the envelope."""

from __future__ import annotations

import orjson

from domain.actors import PUBLIC_FIELDS, Actor
from domain.events import EVENT_TYPES, Event, JobStateChanged
from domain.timefmt import format_time
from eventstore.record import NewEvent, RecordedEvent


def compact(data: bytes) -> bytes:
    """A copy of orjson's output that is only as big as its contents.

    orjson returns bytes in a buffer of at least 4 KB: fine for a response, but every
    encoding that is kept (events in the stream window, the read model's encoded objects)
    would hold 4 KB; the copy costs far less than that memory (bench/README.md).
    """
    return b"%b" % data


class UnknownEventError(ValueError):
    """The log holds an event type this code does not know (written by a newer version)."""


def encode(event: Event) -> NewEvent:
    return NewEvent(
        type=type(event).__name__,
        object_type=event.object_type,
        object_id=event.object_id,
        app_id=event.app_id,
        data=compact(orjson.dumps(event.data())),
        op=event.op,
        unique_id=event.unique_id if isinstance(event, JobStateChanged) else None,
    )


def decode(record: RecordedEvent) -> Event:
    cls = EVENT_TYPES.get(record.type)
    if cls is None:
        raise UnknownEventError(f"event {record.id} has an unknown type {record.type!r}")
    return cls.from_data(orjson.loads(record.data), record.app_id, record.object_id)


def encode_meta(meta: dict[str, object]) -> bytes:
    """A record's meta (what a write carried besides its events) as stored."""
    return orjson.dumps(meta)


def decode_meta(meta: bytes) -> dict[str, object]:
    """A stored meta object; one that is not an object reads as empty."""
    doc = orjson.loads(meta)
    return doc if isinstance(doc, dict) else {}


def actor_of(record: RecordedEvent) -> Actor | None:
    """Who or what caused a recorded event (None for events written before actors)."""
    if record.meta is None:
        return None
    return Actor.from_json(decode_meta(record.meta).get("actor"))


def envelope(record: RecordedEvent) -> bytes:
    """Flynn's event JSON: id, app (omitted when none), object_type, object_id, data, created_at;
    and Evenflow's `meta`, `{"actor": ...}` without the client's address and user agent,
    when the event has an actor (Flynn's clients ignore keys they do not know).

    The payload is embedded from the stored bytes, never parsed and re-encoded.
    """
    doc: dict[str, object] = {"id": record.id}
    if record.app_id is not None:
        doc["app"] = record.app_id
    doc["object_type"] = record.object_type
    doc["object_id"] = record.object_id
    doc["data"] = orjson.Fragment(record.data)
    doc["created_at"] = format_time(record.created_at)
    if record.meta is not None:
        actor = decode_meta(record.meta).get("actor")
        if isinstance(actor, dict):  # as stored: no Actor made, this runs for every event sent
            doc["meta"] = {"actor": {k: actor[k] for k in PUBLIC_FIELDS if k in actor}}
    return orjson.dumps(doc)
