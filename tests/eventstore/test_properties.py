"""Hypothesis properties of the log, on both backends: appends behave like a sequential model."""

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.record import RecordedEvent
from eventstore.store import ConcurrencyError, EventStore
from tests.backends import MakeDatabase, open_log
from tests.eventstore.conftest import ev

# Each append: the unique ids of its events (None = no key), and what it expects of the head.
appends = st.lists(
    st.tuples(
        st.lists(st.sampled_from([None, None, "u1", "u2", "u3"]), min_size=1, max_size=4),
        st.sampled_from(["none", "head", "stale", "ahead"]),
    ),
    max_size=12,
)

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def read_all(store: EventStore) -> list[RecordedEvent]:
    return [e async for e in store.read()]


@PROPERTY_SETTINGS
@given(ops=appends)
def test_sequential_appends_match_the_model(
    log_backend: MakeDatabase | None, ops: list[tuple[list[str | None], str]]
) -> None:
    """Any sequence of appends, with or without expected ids, yields the model's log."""

    async def run() -> None:
        store = await open_log(log_backend)
        try:
            model: list[tuple[str, str | None]] = []  # (object_id, unique_id) in log order
            used: set[str] = set()
            head = 0
            for n, (unique_ids, expectation) in enumerate(ops):
                expected = {"none": None, "head": head, "stale": head - 1, "ahead": head + 1}[
                    expectation
                ]
                events = [ev(f"{n}.{i}", unique_id=u) for i, u in enumerate(unique_ids)]
                try:
                    written = await store.append(events, expected_last_id=expected)
                except ConcurrencyError:
                    assert expected is not None and expected != head
                    continue
                assert expected is None or expected == head
                fresh = []
                for event in events:
                    if event.unique_id is None or event.unique_id not in used:
                        fresh.append((event.object_id, event.unique_id))
                        if event.unique_id is not None:
                            used.add(event.unique_id)
                assert [(e.object_id, e.unique_id) for e in written] == fresh
                model += fresh
                if written:
                    assert written[0].id > head
                    head = written[-1].id
            log = await read_all(store)
            assert [(e.object_id, e.unique_id) for e in log] == model
            assert await store.last_id() == head
        finally:
            await store.close()

    asyncio.run(run())


@PROPERTY_SETTINGS
@given(ops=appends)
def test_concurrent_appends_form_a_sequential_history(
    log_backend: MakeDatabase | None, ops: list[tuple[list[str | None], str]]
) -> None:
    """Appends issued all at once leave a log that some sequential order explains."""

    async def run() -> None:
        store = await open_log(log_backend)
        try:
            start = (await store.append([ev("start")]))[-1].id
            batches = [
                (
                    [ev(f"{n}.{i}", unique_id=u) for i, u in enumerate(uids)],
                    None if how == "none" else start,
                )
                for n, (uids, how) in enumerate(ops)
            ]
            results = await asyncio.gather(
                *[store.append(events, expected_last_id=exp) for events, exp in batches],
                return_exceptions=True,
            )
            log = await read_all(store)
            index = {e.id: i for i, e in enumerate(log)}
            for (_events, expected), result in zip(batches, results, strict=True):
                if isinstance(result, ConcurrencyError):
                    assert expected is not None
                    continue
                assert isinstance(result, list)
                if not result:
                    continue
                spots = [index[e.id] for e in result]
                # contiguous, in the order given, and after exactly the expected head
                assert spots == list(range(spots[0], spots[0] + len(result)))
                if expected is not None:
                    assert log[spots[0] - 1].id == expected
            winners = [
                r
                for (_, e), r in zip(batches, results, strict=True)
                if e is not None and isinstance(r, list)
            ]
            # Only one append can find the head where it expects it (unless it wrote nothing).
            assert len([w for w in winners if w]) <= 1
            unique = [e.unique_id for e in log if e.unique_id is not None]
            assert len(unique) == len(set(unique))
        finally:
            await store.close()

    asyncio.run(run())
