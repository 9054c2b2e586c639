"""What every handler module needs: the clock, new ids, the model, the dispatcher, lookups."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from commands.errors import NotFoundError, ValidationError
from controller import keys
from controller.consistency import written
from eventstore.codec import decode
from eventstore.events import (
    AppCreated,
    AppUpdated,
    ArtifactCreated,
    Event,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    ResourceCreated,
    ResourceDeleted,
    RouteCreated,
    RouteUpdated,
)
from eventstore.objects import App
from eventstore.record import RecordedEvent
from projections.idempotency import Idempotency
from projections.memory import MemoryReadModel
from projections.state import canonical_uuid

T = TypeVar("T")
E = TypeVar("E", bound=Event)

#: Events whose payload is their object's Flynn JSON, as the write that recorded it answers.
ObjectEvent = (
    AppCreated
    | AppUpdated
    | ArtifactCreated
    | JobStateChanged
    | ProviderCreated
    | ReleaseCreated
    | ResourceCreated
    | ResourceDeleted
    | RouteCreated
    | RouteUpdated
)


def now() -> datetime:
    """The time a command is decided at; Postgres keeps microseconds, and so do we."""
    return datetime.now(UTC)


#: Random bytes for new ids, drawn from the OS 4 KB at a time: uuid.uuid4() makes one
#: getrandom() call per id, and under load those were 6 % of a POST /apps.
_random = b""
_VARIANT = "89ab"  # RFC 4122: the variant's two high bits are 10


def _forget_random() -> None:
    global _random
    _random = b""  # a forked child must not hand out its parent's ids


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A random (version 4) uuid, as str(uuid.uuid4()) would give."""
    global _random
    if not _random:
        _random = os.urandom(4096)
    h, _random = _random[:16].hex(), _random[16:]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def model(request: web.Request) -> MemoryReadModel:
    return request.app[keys.READ_MODEL]


#: The request header that makes a write idempotent (see README, "Idempotent writes").
IDEMPOTENCY_KEY = "Idempotency-Key"
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,255}")
#: Set once a request's Idempotency-Key went with a command: it goes with one only.
_KEY_USED = web.RequestKey("evenflow_idempotency_key_used", bool)


async def dispatch(request: web.Request, command: Any) -> list[RecordedEvent]:
    """Decide and record `command`; its recorded events (for a retry of a write sent with an
    Idempotency-Key, those the first attempt recorded).

    The key goes with the request's first command only: a second one (a clean-up after the
    first failed) is not what the key names.
    """
    idempotency = None
    if not request.get(_KEY_USED):
        idempotency = await request_idempotency(request)
        request[_KEY_USED] = True
    return written(request, await request.app[keys.DISPATCHER].handle(command, idempotency))


async def request_idempotency(request: web.Request) -> Idempotency | None:
    """The request's Idempotency-Key (1 to 255 printable ASCII characters) and what
    identifies the request: method, path and the SHA-256 of its body."""
    values = request.headers.getall(IDEMPOTENCY_KEY, [])
    if not values:
        return None
    if len(values) > 1 or not _PRINTABLE_ASCII.fullmatch(values[0]):
        raise ValidationError(
            IDEMPOTENCY_KEY, "must be one header of 1 to 255 printable ASCII characters"
        )
    body = await request.read()  # read already: aiohttp keeps it
    digest = hashlib.sha256(body).hexdigest()
    return Idempotency(values[0], (request.method, request.path, digest))


# A write answers from the events it recorded, never by reading its object back: by then
# the object may be gone (an app deleted meanwhile, through this process or another one),
# and a retried write gets the records of its first attempt.


def recorded(records: list[RecordedEvent], kind: type[object]) -> RecordedEvent | None:
    """The last of a write's records that holds a `kind` event, if any."""
    name = kind.__name__
    return next((r for r in reversed(records) if r.type == name), None)


def payload(records: list[RecordedEvent], kind: type[ObjectEvent]) -> bytes:
    """The JSON of the object the write recorded: its event's payload, as stored."""
    return found(recorded(records, kind)).data


def event_from(records: list[RecordedEvent], kind: type[E]) -> E:
    """The last `kind` event the write recorded."""
    event = decode(found(recorded(records, kind)))
    if not isinstance(event, kind):
        raise TypeError(f"a {kind.__name__} record decoded as {type(event).__name__}")
    return event


def found(obj: T | None) -> T:
    """`obj`, or Flynn's bare 404 when it is None."""
    if obj is None:
        raise NotFoundError()
    return obj


def path_app(request: web.Request) -> App:
    """The live app named by the `{app}` path segment (id or name), or 404."""
    return found(model(request).app(request.match_info["app"]))


def path_uuid(request: web.Request, name: str) -> str:
    """A uuid path segment in canonical form; a malformed one is a 404, never a 500."""
    value = canonical_uuid(request.match_info[name].lower())
    if value is None:
        raise NotFoundError()
    return value
