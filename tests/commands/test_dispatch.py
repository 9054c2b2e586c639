"""The dispatcher: batched decisions, read-your-writes, retries when another process wrote."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from commands.apps import CreateApp, UpdateApp
from commands.dispatch import Dispatcher
from commands.errors import AlreadyExistsError, UnavailableError
from eventstore.codec import encode
from eventstore.events import AppCreated
from eventstore.memory import InMemoryEventStore
from eventstore.objects import App
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import StoreUnavailableError
from projections.memory import MemoryReadModel

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def app_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


async def started(store: object) -> Dispatcher:
    model = MemoryReadModel()
    await model.catch_up(store)  # type: ignore[arg-type]
    dispatcher = Dispatcher(store, model)  # type: ignore[arg-type]
    dispatcher.start()
    return dispatcher


async def test_concurrent_creates_of_one_name_yield_one_app_and_errors_for_the_rest():
    """Commands decided in one batch see each other: a name is taken once."""
    dispatcher = await started(InMemoryEventStore())
    results = await asyncio.gather(
        *[dispatcher.handle(CreateApp(id=app_id(i), now=T0, name="same")) for i in range(10)],
        return_exceptions=True,
    )
    assert sum(isinstance(r, list) for r in results) == 1
    assert sum(isinstance(r, AlreadyExistsError) for r in results) == 9
    assert [a.name for a in dispatcher.model.apps()] == ["same"]
    await dispatcher.stop()


async def test_a_caller_reads_its_own_write_as_soon_as_handle_returns():
    """After handle() returns, the read model already holds the new state."""
    dispatcher = await started(InMemoryEventStore())
    recorded = await dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="mine"))
    assert dispatcher.model.last_id == recorded[-1].id
    assert dispatcher.model.app("mine") is not None
    await dispatcher.stop()


class FailingStore(InMemoryEventStore):
    """A log that is unreachable for appends."""

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        raise StoreUnavailableError("connection refused")


async def test_an_unavailable_log_fails_the_batch_and_leaves_the_state_untouched():
    """When the append fails, callers get UnavailableError and nothing speculative remains."""
    store = InMemoryEventStore()
    dispatcher = await started(store)
    await dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="kept", meta={"a": "1"}))
    dispatcher.store = FailingStore()
    results = await asyncio.gather(
        dispatcher.handle(CreateApp(id=app_id(2), now=T0, name="lost")),
        dispatcher.handle(UpdateApp(app="kept", now=T0, meta={"b": "2"})),
        return_exceptions=True,
    )
    assert all(isinstance(r, UnavailableError) for r in results)
    assert dispatcher.model.app("lost") is None
    assert dispatcher.model.app("kept").meta == {"a": "1"}  # type: ignore[union-attr]
    assert dispatcher.model.state.journal is None
    await dispatcher.stop()


@pytest.mark.postgres
async def test_two_processes_writing_one_log_converge(make_database):
    """Two dispatchers on one database retry on conflict; both end with every app, once."""
    dsn = await make_database()
    stores = [await PostgresEventStore.open(dsn) for _ in range(2)]
    first, second = [await started(s) for s in stores]
    results = await asyncio.gather(
        *[
            (first if i % 2 else second).handle(
                CreateApp(id=app_id(i), now=T0, name=f"app{i % 15}")
            )
            for i in range(60)
        ],
        return_exceptions=True,
    )
    assert sum(isinstance(r, list) for r in results) == 15
    assert all(isinstance(r, (list, AlreadyExistsError)) for r in results)
    for dispatcher in (first, second):
        await dispatcher.model.catch_up(dispatcher.store)
        assert sorted(a.name for a in dispatcher.model.apps()) == sorted(
            f"app{i}" for i in range(15)
        )
        await dispatcher.stop()
    for store in stores:
        await store.close()


class RacedStore(InMemoryEventStore):
    """A log another process appends to just before each of our optimistic appends lands,
    as on a busy shared database: an optimistic append never wins."""

    def __init__(self) -> None:
        super().__init__()
        self.races = 0

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        if expected_last_id is not None:
            self.races += 1
            n = 1000 + self.races
            other = App(id=app_id(n), name=f"other{n}", created_at=T0, updated_at=T0)
            await super().append([encode(AppCreated(other))])
        return await super().append(events, expected_last_id)


async def test_a_log_that_keeps_moving_cannot_starve_a_write():
    """When another process always appends first, every command still lands (decided again
    under the log's write lock) and sees what the other process wrote."""
    store = RacedStore()
    dispatcher = await started(store)
    results = await asyncio.gather(
        *[dispatcher.handle(CreateApp(id=app_id(i), now=T0, name=f"app{i}")) for i in range(30)],
        dispatcher.handle(CreateApp(id=app_id(99), now=T0, name="app0")),
        return_exceptions=True,
    )
    assert all(isinstance(r, list) and len(r) == 1 for r in results[:30])
    assert isinstance(results[30], AlreadyExistsError)
    assert store.races >= 1
    assert dispatcher.model.last_id == await store.last_id()
    others = [f"other{1000 + n}" for n in range(1, store.races + 1)]
    names = sorted(a.name for a in dispatcher.model.apps())
    assert names == sorted([f"app{i}" for i in range(30)] + others)
    await dispatcher.stop()
