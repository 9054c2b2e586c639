"""The EventStore contract: every test runs against the in-memory and the Postgres backend."""

import asyncio
from datetime import UTC

import orjson
import pytest

from eventstore.record import EventFilter, RecordedEvent
from eventstore.store import ConcurrencyError
from tests.eventstore.conftest import APP_A, APP_B, StoreFactory, ev


async def collect(aiter: object, n: int | None = None, timeout: float = 5.0) -> list[RecordedEvent]:
    """The first `n` events of an async iterator (all of them when n is None)."""
    out: list[RecordedEvent] = []

    async def run() -> None:
        async for event in aiter:  # type: ignore[attr-defined]
            out.append(event)
            if n is not None and len(out) >= n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def test_append_returns_recorded_events_that_read_back_identically(make_store: StoreFactory):
    """An appended event reads back with its envelope, payload bytes, id and commit time."""
    store = await make_store()
    written = await store.append(
        [ev("a1", app_id=APP_A, data=b'{"name":"x","n":[1,2]}'), ev("a2", object_type="release")]
    )
    assert [e.object_id for e in written] == ["a1", "a2"]
    assert written[0].app_id == APP_A and written[0].data == b'{"name":"x","n":[1,2]}'
    assert written[0].created_at.tzinfo is not None
    assert written[0].created_at.utcoffset() == UTC.utcoffset(None)
    assert await collect(store.read()) == written
    assert await store.get(written[1].id) == written[1]
    assert await store.last_id() == written[1].id


async def test_empty_log_has_head_zero_and_reads_nothing(make_store: StoreFactory):
    """A new log has head 0, no events, and get() of any id is None."""
    store = await make_store()
    assert await store.last_id() == 0
    assert await collect(store.read()) == []
    assert await collect(store.read_backward()) == []
    assert await store.get(1) is None


async def test_ids_strictly_increase_across_appends(make_store: StoreFactory):
    """Every append's ids are greater than all earlier ids, and created_at never goes back."""
    store = await make_store()
    seen: list[RecordedEvent] = []
    for i in range(5):
        seen += await store.append([ev(str(i)), ev(f"{i}b")])
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids)) and ids[0] > 0
    times = [e.created_at for e in seen]
    assert times == sorted(times)


async def test_expected_last_id_conflict_writes_nothing(make_store: StoreFactory):
    """With a stale expected id the append raises ConcurrencyError and writes nothing."""
    store = await make_store()
    first = await store.append([ev("a")], expected_last_id=0)
    with pytest.raises(ConcurrencyError) as info:
        await store.append([ev("b"), ev("c")], expected_last_id=0)
    assert info.value.expected == 0 and info.value.actual == first[-1].id
    assert [e.object_id for e in await collect(store.read())] == ["a"]
    second = await store.append([ev("b")], expected_last_id=first[-1].id)
    assert second[0].id > first[-1].id


async def test_duplicate_unique_id_is_not_written_again(make_store: StoreFactory):
    """An event whose unique_id exists is skipped; the rest of its append is written."""
    store = await make_store()
    await store.append([ev("j", unique_id="j|up")])
    written = await store.append([ev("j", unique_id="j|up"), ev("j", unique_id="j|down")])
    assert [e.unique_id for e in written] == ["j|down"]
    again = await store.append([ev("k", unique_id="k|up"), ev("k", unique_id="k|up")])
    assert [e.unique_id for e in again] == ["k|up"]
    all_ids = [e.unique_id for e in await collect(store.read())]
    assert all_ids == ["j|up", "j|down", "k|up"]


async def test_append_of_only_duplicates_writes_nothing_and_keeps_the_head(
    make_store: StoreFactory,
):
    """An append made entirely of used unique ids returns [] and leaves the head alone."""
    store = await make_store()
    head = (await store.append([ev("j", unique_id="u1")]))[-1].id
    assert await store.append([ev("j", unique_id="u1")], expected_last_id=head) == []
    assert await store.last_id() == head


async def test_invalid_payload_is_refused_and_nothing_is_written(make_store: StoreFactory):
    """A payload that is not JSON, or an app_id that is not a uuid, is a ValueError."""
    store = await make_store()
    with pytest.raises(ValueError):
        await store.append([ev("ok"), ev("bad", data=b"{not json")])
    with pytest.raises(ValueError):
        await store.append([ev("bad", app_id="not-a-uuid")])
    with pytest.raises(ValueError):
        await store.append([])
    assert await store.last_id() == 0


async def test_a_failing_member_does_not_fail_concurrent_appends(make_store: StoreFactory):
    """Concurrent appends succeed although one of them, appended with them, is refused."""
    store = await make_store()
    results = await asyncio.gather(
        *[store.append([ev(f"ok{i}")]) for i in range(10)],
        store.append([ev("bad", data=b"\xff")]),
        *[store.append([ev(f"ok{i + 10}")]) for i in range(10)],
        return_exceptions=True,
    )
    assert isinstance(results[10], ValueError)
    assert all(isinstance(r, list) and len(r) == 1 for i, r in enumerate(results) if i != 10)
    assert len(await collect(store.read())) == 20


async def test_filters_select_by_app_object_type_and_object_id(make_store: StoreFactory):
    """Reads filter by app_id, by any of object_types, and by object_id, combined with AND."""
    store = await make_store()
    await store.append(
        [
            ev("r1", object_type="route", app_id=APP_A),
            ev("a", object_type="app", app_id=APP_A),
            ev("r2", object_type="route", app_id=APP_B),
            ev("j", object_type="job", app_id=APP_B),
            ev("x", object_type="artifact"),
        ]
    )

    async def ids(filter: EventFilter) -> list[str]:
        return [e.object_id for e in await collect(store.read(filter=filter))]

    assert await ids(EventFilter(app_id=APP_A)) == ["r1", "a"]
    assert await ids(EventFilter(object_types=("route", "job"))) == ["r1", "r2", "j"]
    assert await ids(EventFilter(object_id="j")) == ["j"]
    assert await ids(EventFilter(app_id=APP_B, object_types=("route",))) == ["r2"]
    assert await ids(EventFilter(object_types=("nothing",))) == []
    assert await ids(EventFilter(app_id="not-a-uuid")) == []


async def test_read_backward_honours_before_since_and_count(make_store: StoreFactory):
    """Backward reads are newest first, bounded by before_id/since_id and cut at count."""
    store = await make_store()
    written = await store.append([ev(str(i), app_id=APP_A if i % 2 else None) for i in range(10)])
    ids = [e.id for e in written]

    async def back(**kw: object) -> list[int]:
        return [e.id for e in await collect(store.read_backward(**kw))]  # type: ignore[arg-type]

    assert await back() == ids[::-1]
    assert await back(count=3) == ids[::-1][:3]
    assert await back(before_id=ids[5]) == ids[:5][::-1]
    assert await back(since_id=ids[6]) == ids[7:][::-1]
    assert await back(before_id=ids[8], since_id=ids[2], count=2) == [ids[7], ids[6]]
    assert await back(filter=EventFilter(app_id=APP_A), count=2) == [ids[9], ids[7]]
    assert await back(count=0) == []


async def test_forward_read_pages_and_stops_at_until(make_store: StoreFactory):
    """A forward read returns everything in order across pages, and nothing after `until`."""
    store = await make_store()
    written = []
    for i in range(7):
        written += await store.append([ev(f"{i}a"), ev(f"{i}b")])
    assert await collect(store.read(page_size=3)) == written
    assert (
        await collect(store.read(after=written[3].id, until=written[9].id, page_size=2))
        == (written[4:10])
    )


async def test_subscribe_yields_backlog_then_live_events_in_id_order(make_store: StoreFactory):
    """A subscriber sees every event after its start position exactly once, in id order."""
    store = await make_store()
    backlog = await store.append([ev("b1"), ev("b2")])
    subscription = store.subscribe(after=backlog[0].id)
    first = await collect(subscription, 1)
    assert first == backlog[1:]
    live = []
    for i in range(3):
        live += await store.append([ev(f"l{i}")])
    assert await collect(subscription, 3) == live


async def test_subscribe_with_filter_skips_other_events_without_stalling(make_store: StoreFactory):
    """A filtered subscriber gets only matching events, also when many others come between."""
    store = await make_store()
    sub = store.subscribe(after=0, filter=EventFilter(object_types=("job",)))
    task = asyncio.create_task(collect(sub, 2))
    await store.append([ev(f"n{i}") for i in range(50)])
    j1 = await store.append([ev("j1", object_type="job")])
    await store.append([ev("n")])
    j2 = await store.append([ev("j2", object_type="job")])
    assert await task == j1 + j2


async def test_subscribers_see_every_event_of_concurrent_appenders(make_store: StoreFactory):
    """With many concurrent appenders, each subscriber's sequence equals the final log."""
    store = await make_store()
    subs = [
        asyncio.create_task(collect(store.subscribe(after=0), 200, timeout=20)) for _ in range(3)
    ]

    async def appender(k: int) -> None:
        for i in range(20):
            await store.append([ev(f"{k}-{i}")])

    await asyncio.gather(*[appender(k) for k in range(10)])
    log = await collect(store.read())
    assert len(log) == 200
    for sub in subs:
        assert await sub == log


async def test_concurrent_appends_never_interleave(make_store: StoreFactory):
    """Each append's events are contiguous in the log: no other append's event is between."""
    store = await make_store()
    results = await asyncio.gather(
        *[store.append([ev(f"{k}-{i}") for i in range(5)]) for k in range(30)]
    )
    log = await collect(store.read())
    position = {e.id: n for n, e in enumerate(log)}
    for written in results:
        spots = [position[e.id] for e in written]
        assert spots == list(range(spots[0], spots[0] + 5))
        assert [log[p].object_id for p in spots] == [e.object_id for e in written]


async def test_only_one_of_concurrent_appends_with_the_same_expected_id_wins(
    make_store: StoreFactory,
):
    """Of several appends expecting the same head, exactly one is written."""
    store = await make_store()
    head = (await store.append([ev("start")]))[-1].id
    results = await asyncio.gather(
        *[store.append([ev(f"c{i}")], expected_last_id=head) for i in range(8)],
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, list)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for r in results if not isinstance(r, list))
    assert len(await collect(store.read())) == 2


async def test_payload_bytes_are_kept_exactly(make_store: StoreFactory):
    """The stored payload is byte for byte what was appended (no re-encoding)."""
    store = await make_store()
    data = b'{"b": 1,  "a": "\\u00e9t\\u00e9", "z": [ ]}'
    await store.append([ev("x", data=data)])
    (event,) = await collect(store.read())
    assert event.data == data
    assert orjson.loads(event.data)["a"] == "été"


def counter_step(seen: list[RecordedEvent]) -> list:
    """append_after's decide for a counter in the log: one more than its newest value."""
    values = [orjson.loads(e.data)["n"] for e in seen if e.object_id == "counter"]
    return [ev("counter", data=orjson.dumps({"n": (values or [0])[-1] + 1}))]


async def test_append_after_decides_on_every_newer_event_and_writes_after_them(
    make_store: StoreFactory,
):
    """append_after hands `decide` exactly the events after `after` and writes at the head."""
    store = await make_store()
    first = await store.append([ev("a"), ev("b")])
    later = await store.append([ev("c")])
    handed: list[list[RecordedEvent]] = []

    def decide(seen: list[RecordedEvent]) -> list:
        handed.append(seen)
        return [ev("d", unique_id="u1"), ev("e")]

    seen, written = await store.append_after(first[0].id, decide)
    assert handed == [seen]
    assert [e.object_id for e in seen] == ["b", "c"]
    assert [e.object_id for e in written] == ["d", "e"]
    assert written[0].id > later[0].id
    assert await collect(store.read()) == [*first, *later, *written]
    # A duplicate unique id is skipped as in append; nothing to write writes nothing.
    _, again = await store.append_after(written[-1].id, lambda seen: [ev("d", unique_id="u1")])
    assert again == []
    seen, none = await store.append_after(0, lambda seen: [])
    assert (len(seen), none) == (5, [])
    assert await store.last_id() == written[-1].id


async def test_append_after_writes_nothing_when_decide_fails(make_store: StoreFactory):
    """An exception from `decide` propagates, and the log is unchanged."""
    store = await make_store()
    await store.append([ev("a")])

    def decide(seen: list[RecordedEvent]) -> list:
        raise RuntimeError("undecided")

    with pytest.raises(RuntimeError, match="undecided"):
        await store.append_after(0, decide)
    assert [e.object_id for e in await collect(store.read())] == ["a"]
    assert (await store.append([ev("b")]))[0].object_id == "b"  # and the log is not locked


async def test_append_after_has_no_append_between_its_read_and_its_write(make_store: StoreFactory):
    """Concurrent counters through append_after, racing plain appends, never lose an update."""
    store = await make_store()

    async def counter() -> None:
        for _ in range(10):
            await store.append_after(0, counter_step)

    async def noise(k: int) -> None:
        for i in range(10):
            await store.append([ev(f"noise-{k}-{i}", data=b'{"noise":1}')])

    await asyncio.gather(*[counter() for _ in range(5)], *[noise(k) for k in range(3)])
    values = [
        orjson.loads(e.data)["n"] for e in await collect(store.read()) if e.object_id == "counter"
    ]
    assert values == list(range(1, 51))
