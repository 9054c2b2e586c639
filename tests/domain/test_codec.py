"""Events survive the log: decode(encode(e)) == e, and the stored type names never change."""

from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import given

from domain.codec import UnknownEventError, decode, encode, envelope
from domain.events import EVENT_TYPES, Event
from eventstore.record import RecordedEvent
from tests.strategies import events

GOLDEN = Path(__file__).parents[1] / "golden" / "event_types.txt"
NOW = datetime(2015, 12, 16, 2, 21, 16, 838613, tzinfo=UTC)


def record(event: Event, event_id: int = 7) -> RecordedEvent:
    return RecordedEvent.of(encode(event), event_id, NOW)


@given(events)
def test_every_event_round_trips_through_the_log(event: Event) -> None:
    """Decoding an encoded event gives the same event back, envelope fields included."""
    new = encode(event)
    assert (new.object_type, new.object_id, new.app_id) == (
        event.object_type,
        event.object_id,
        event.app_id,
    )
    assert decode(record(event)) == event


@given(events)
def test_envelope_is_flynns_event_json(event: Event) -> None:
    """The wire envelope has Flynn's keys, `app` only with an app, and the payload as stored."""
    doc = orjson.loads(envelope(record(event)))
    expected = {"id", "object_type", "object_id", "data", "created_at"}
    assert set(doc) == expected | ({"app"} if event.app_id else set())
    assert doc["data"] == event.data()
    assert doc["created_at"] == "2015-12-16T02:21:16.838613Z"


def test_stored_type_names_are_frozen() -> None:
    """Renaming or removing an event class would orphan stored events: the set is frozen."""
    assert sorted(EVENT_TYPES) == GOLDEN.read_text().split()


def test_an_unknown_type_is_refused_clearly() -> None:
    """A log written by a newer version fails loudly instead of being folded wrongly."""
    bad = RecordedEvent(1, "SomethingNew", "x", "y", None, None, None, b"{}", NOW)
    try:
        decode(bad)
    except UnknownEventError as error:
        assert "SomethingNew" in str(error)
    else:
        raise AssertionError("decoded an unknown event type")
