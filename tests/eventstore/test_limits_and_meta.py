"""The log's limits and its events' meta: both backends refuse the same input before writing
anything, keep meta byte for byte, and hold an Idempotency-Key once."""

import orjson
import pytest

from eventstore.record import NewEvent
from eventstore.store import (
    MAX_EVENT_BYTES,
    MAX_ID_BYTES,
    MAX_META_BYTES,
    EventRefusedError,
    IdempotencyKeyTakenError,
)
from tests.eventstore.conftest import StoreFactory, ev
from tests.eventstore.test_contract import collect

FIRST = b'{"idempotency_key":"k1","request":{"method":"POST","path":"/apps","body_sha256":"00"}}'


def keyed(object_id: str, meta: bytes) -> NewEvent:
    return NewEvent("AppCreated", "app", object_id, None, b"{}", meta=meta)


@pytest.mark.parametrize(
    "bad",
    [
        ev("x" * (MAX_ID_BYTES + 1)),
        ev("é" * (MAX_ID_BYTES // 2 + 1)),  # counted in UTF-8 bytes
        ev("ok", unique_id="u" * (MAX_ID_BYTES + 1)),
        ev("nul\x00"),
        ev("\ud800"),  # a lone surrogate has no UTF-8 form
        ev("ok", type="T" * 65),
        ev("big", data=b'"' + b"x" * MAX_EVENT_BYTES + b'"'),
        keyed("meta", b'{"k":"' + b"x" * MAX_META_BYTES + b'"}'),
        ev("app", app_id="not-a-uuid"),
    ],
    ids=[
        "long-id",
        "long-utf8-id",
        "long-unique-id",
        "nul",
        "surrogate",
        "long-type",
        "big-event",
        "big-meta",
        "bad-app-id",
    ],
)
async def test_an_event_beyond_the_limits_is_refused_and_nothing_is_written(
    make_store: StoreFactory, bad: NewEvent
):
    """Each limit refuses the whole append, with the limit named, before anything is written."""
    store = await make_store()
    with pytest.raises(EventRefusedError):
        await store.append([ev("fine"), bad])
    assert await store.last_id() == 0


async def test_events_at_the_limits_are_written(make_store: StoreFactory):
    """The limits are inclusive: an id of MAX_ID_BYTES and an event of MAX_EVENT_BYTES fit."""
    store = await make_store()
    data = b'"' + b"x" * (MAX_EVENT_BYTES - 2) + b'"'
    written = await store.append([ev("i" * MAX_ID_BYTES), ev("big", data=data)])
    assert [len(e.data) for e in written] == [7, MAX_EVENT_BYTES]
    assert [e.object_id for e in await collect(store.read())] == ["i" * MAX_ID_BYTES, "big"]


async def test_meta_reads_back_byte_for_byte(make_store: StoreFactory):
    """An event's meta is kept as written (spaces and key order too); most events have none."""
    store = await make_store()
    meta = b'{ "b": 1,  "a": "\\u00e9" }'
    written = await store.append([keyed("a", meta), ev("b")])
    assert [e.meta for e in written] == [meta, None]
    assert await collect(store.read()) == written
    assert [e async for e in store.read_backward()] == written[::-1]
    assert await store.get(written[0].id) == written[0]


async def test_a_meta_that_is_not_json_is_refused(make_store: StoreFactory):
    """Meta must be JSON, as a payload must."""
    store = await make_store()
    with pytest.raises(EventRefusedError):
        await store.append([keyed("a", b"{not json")])
    assert await store.last_id() == 0


async def test_an_idempotency_key_is_written_once_ever(make_store: StoreFactory):
    """A second command's first event with a key the log holds is refused with its whole
    append; the later events of one command, which hold the key without the request, are not."""
    store = await make_store()
    rest = orjson.dumps({"idempotency_key": "k1"})
    await store.append([keyed("a", FIRST), keyed("b", rest), keyed("c", rest)])
    head = await store.last_id()
    with pytest.raises(IdempotencyKeyTakenError):
        await store.append([ev("other"), keyed("again", FIRST)])
    with pytest.raises(IdempotencyKeyTakenError):
        await store.append([keyed("twice", FIRST.replace(b"k1", b"k2"))] * 2)
    assert await store.last_id() == head
    other_key = FIRST.replace(b"k1", b"k3")
    assert len(await store.append([keyed("d", other_key)])) == 1
