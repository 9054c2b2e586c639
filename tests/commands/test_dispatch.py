"""The dispatcher: batched decisions, read-your-writes, retries when another process wrote."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
import pytest

from commands.apps import CreateApp, UpdateApp
from commands.dispatch import Dispatcher
from commands.errors import AlreadyExistsError, ConflictError, UnavailableError, ValidationError
from domain.codec import encode
from domain.events import AppCreated
from domain.objects import App
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import (
    MAX_EVENT_BYTES,
    EventRefusedError,
    EventStore,
    OutcomeUnknownError,
    StoreUnavailableError,
)
from projections.apps import all_apps, find_app
from projections.idempotency import Idempotency
from projections.memory import MemoryReadModel

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def app_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def apps_of(dispatcher: Dispatcher) -> list[App]:
    return all_apps(dispatcher.model.state)


def app_of(dispatcher: Dispatcher, ref: str) -> App | None:
    return find_app(dispatcher.model.state, ref)


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
    assert [a.name for a in apps_of(dispatcher)] == ["same"]
    await dispatcher.stop()


async def test_a_caller_reads_its_own_write_as_soon_as_handle_returns():
    """After handle() returns, the read model already holds the new state."""
    dispatcher = await started(InMemoryEventStore())
    recorded = await dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="mine"))
    assert dispatcher.model.last_id == recorded[-1].id
    assert app_of(dispatcher, "mine") is not None
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
    assert app_of(dispatcher, "lost") is None
    assert app_of(dispatcher, "kept").meta == {"a": "1"}  # type: ignore[union-attr]
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
        assert sorted(a.name for a in apps_of(dispatcher)) == sorted(f"app{i}" for i in range(15))
        await dispatcher.stop()
    for store in stores:
        await store.close()


@pytest.mark.postgres
async def test_concurrent_commands_share_few_commits(make_database):
    """Commands sent at once are written in far fewer transactions (commit times) than
    commands: the dispatcher's batches are the log's group commit."""
    store = await PostgresEventStore.open(await make_database())
    dispatcher = await started(store)
    try:
        results = await asyncio.gather(
            *[dispatcher.handle(CreateApp(id=app_id(i), now=T0, name=f"g{i}")) for i in range(200)]
        )
        assert len({written[0].created_at for written in results}) < 100
    finally:
        await dispatcher.stop()
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
    names = sorted(a.name for a in apps_of(dispatcher))
    assert names == sorted([f"app{i}" for i in range(30)] + others)
    await dispatcher.stop()


# -- one command's fault fails no other ---------------------------------------------------


class CountingStore(InMemoryEventStore):
    """The in-memory log, counting appends."""

    appends = 0

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        self.appends += 1
        return await super().append(events, expected_last_id)


async def test_a_command_whose_events_break_the_logs_limits_is_refused_alone():
    """Among 64 commands decided together, one whose event is larger than the log takes gets
    a validation error naming the limit; the 63 others are written, in one append."""
    store = CountingStore()
    dispatcher = await started(store)
    huge = {"k": "x" * MAX_EVENT_BYTES}
    commands = [CreateApp(id=app_id(i), now=T0, name=f"app{i}") for i in range(64)]
    commands[17] = CreateApp(id=app_id(17), now=T0, name="poisoned", meta=huge)
    results = await asyncio.gather(*map(dispatcher.handle, commands), return_exceptions=True)
    assert isinstance(results[17], ValidationError)
    assert f"more than {MAX_EVENT_BYTES}" in results[17].message
    assert all(isinstance(r, list) and len(r) == 1 for n, r in enumerate(results) if n != 17)
    assert store.appends == 1
    assert len(apps_of(dispatcher)) == 63 and app_of(dispatcher, "poisoned") is None
    await dispatcher.stop()


POISON = app_id(17)


class RefusingStore(CountingStore):
    """A log that refuses any append holding one particular app (as a database constraint
    the service does not check would)."""

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        if any(e.object_id == POISON for e in events):
            self.appends += 1
            raise EventRefusedError("the event log refused the events: poison")
        return await super().append(events, expected_last_id)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Callable[[], Awaitable[str]] | None:
    """None for the in-memory log, else the factory of fresh Postgres databases."""
    # Resolved here, outside the event loop: the session's Postgres fixtures are sync.
    if request.param == "postgres":
        return request.getfixturevalue("make_database")  # type: ignore[no-any-return]
    return None


@pytest.fixture
async def refusing_store(
    database: Callable[[], Awaitable[str]] | None,
) -> AsyncIterator[EventStore]:
    """A log that refuses the poisoned app's event: in memory, or by a CHECK in PostgreSQL."""
    if database is None:
        yield RefusingStore()
        return
    dsn = await database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"ALTER TABLE events ADD CHECK (object_id <> '{POISON}')")
    finally:
        await conn.close()
    store = await PostgresEventStore.open(dsn)
    yield store
    await store.close()


async def test_a_batch_the_log_refuses_is_written_again_command_by_command(
    refusing_store: EventStore,
):
    """The log refuses a batch for one command's event: that command alone is answered with
    a validation error, and the 63 others are written (one by one, deciding each again)."""
    dispatcher = await started(refusing_store)
    commands = [CreateApp(id=app_id(i), now=T0, name=f"app{i}") for i in range(64)]
    results = await asyncio.gather(*map(dispatcher.handle, commands), return_exceptions=True)
    assert isinstance(results[17], ValidationError), results[17]
    assert results[17].message.startswith("the write is refused: the event log refused")
    assert all(isinstance(r, list) and len(r) == 1 for n, r in enumerate(results) if n != 17)
    assert len(apps_of(dispatcher)) == 63
    await dispatcher.model.catch_up(refusing_store)
    assert sorted(a.id for a in apps_of(dispatcher)) == [app_id(i) for i in range(64) if i != 17]
    await dispatcher.stop()


class DoubtingStore(InMemoryEventStore):
    """A log whose appends are sent and never answered."""

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        raise OutcomeUnknownError("the database cannot tell: timed out")


async def test_an_append_of_unknown_outcome_is_answered_so_and_not_folded():
    """Never "not written" when it may have been: a 503 saying the write may have landed,
    safe to retry only with an Idempotency-Key; the model folds nothing of it."""
    dispatcher = await started(DoubtingStore())
    plain, keyed = await asyncio.gather(
        dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="plain")),
        dispatcher.handle(CreateApp(id=app_id(2), now=T0, name="keyed"), key("k")),
        return_exceptions=True,
    )
    assert isinstance(plain, UnavailableError) and isinstance(keyed, UnavailableError)
    assert "may have been committed" in plain.message
    assert (plain.retry, keyed.retry) == (False, True)
    assert apps_of(dispatcher) == [] and dispatcher.model.last_id == 0
    await dispatcher.stop()


# -- idempotency keys -----------------------------------------------------------------------


def key(value: str, body: str = "{}", path: str = "/apps") -> Idempotency:
    return Idempotency(value, ("POST", path, hashlib.sha256(body.encode()).hexdigest()))


async def test_a_retry_with_the_same_key_gets_the_first_events_and_writes_nothing():
    """The second attempt (new ids, as a handler makes them) is answered with the events the
    first recorded, route included, and the log holds the write once."""
    store = InMemoryEventStore()
    dispatcher = await started(store)

    def attempt(n: int) -> CreateApp:
        return CreateApp(
            id=app_id(n),
            now=T0,
            name="once",
            default_route_domain="example.com",
            route_id=app_id(50 + n),
        )

    first = await dispatcher.handle(attempt(1), key("k1"))
    again = await dispatcher.handle(attempt(2), key("k1"))
    assert [e.type for e in first] == ["AppCreated", "RouteCreated"]
    assert again == first
    assert [e.id async for e in store.read()] == [e.id for e in first]
    await dispatcher.stop()


async def test_the_same_key_with_another_request_is_a_conflict_and_writes_nothing():
    """A key goes with one request (method, path, body): another one is refused, not retried."""
    store = InMemoryEventStore()
    dispatcher = await started(store)
    await dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="a"), key("k", '{"name":"a"}'))
    with pytest.raises(ConflictError) as refused:
        await dispatcher.handle(CreateApp(id=app_id(2), now=T0, name="b"), key("k", '{"name":"b"}'))
    assert refused.value.retry is False and "different request" in refused.value.message
    assert await store.last_id() == 1
    await dispatcher.stop()


async def test_one_key_twice_in_one_batch_is_written_once():
    """A retry that comes while the first attempt is decided: one is written, the other is
    told to retry (and a retry then gets the first's events)."""
    store = InMemoryEventStore()
    dispatcher = await started(store)
    results = await asyncio.gather(
        dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="dup"), key("k")),
        dispatcher.handle(CreateApp(id=app_id(2), now=T0, name="dup"), key("k")),
        return_exceptions=True,
    )
    assert isinstance(results[0], list) and isinstance(results[1], ConflictError)
    assert results[1].retry is True
    assert (
        await dispatcher.handle(CreateApp(id=app_id(3), now=T0, name="dup"), key("k"))
        == (results[0])
    )
    assert await store.last_id() == 1
    await dispatcher.stop()


async def test_a_key_older_than_the_fold_remembers_is_refused_not_applied_again():
    """Once the fold has forgotten a key (after RETENTION of log time), the log still refuses
    it: the retry is a conflict, and the write stays applied once."""
    store = InMemoryEventStore()
    dispatcher = await started(store)
    await dispatcher.handle(CreateApp(id=app_id(1), now=T0, name="old"), key("k"))
    dispatcher.model.state.idempotency.clear()  # as after RETENTION
    with pytest.raises(ConflictError) as refused:
        await dispatcher.handle(CreateApp(id=app_id(2), now=T0, name="new"), key("k"))
    assert refused.value.retry is False and "24 hours" in refused.value.message
    assert [a.name for a in apps_of(dispatcher)] == ["old"]
    await dispatcher.stop()


@pytest.mark.postgres
async def test_a_key_holds_across_processes_and_restarts(make_database):
    """Another process with a stale fold, and a process started afresh, answer a retry with
    the first attempt's events and write nothing."""
    dsn = await make_database()
    stores = [await PostgresEventStore.open(dsn) for _ in range(3)]
    first, other = [await started(s) for s in stores[:2]]
    written = await first.handle(CreateApp(id=app_id(1), now=T0, name="once"), key("k"))
    # `other` has not folded it (it has no follower): it finds it under the log's lock.
    assert await other.handle(CreateApp(id=app_id(2), now=T0, name="once"), key("k")) == written
    restarted = await started(stores[2])
    assert await restarted.handle(CreateApp(id=app_id(3), now=T0, name="once"), key("k")) == written
    assert [e.id async for e in stores[2].read()] == [e.id for e in written]
    for dispatcher in (first, other, restarted):
        await dispatcher.stop()
    for store in stores:
        await store.close()
