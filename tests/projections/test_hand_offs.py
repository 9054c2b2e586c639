"""Who folds what: the dispatcher folds its own appends (from the events it decided), the
follower (projections.runner.follow) the others', and the model hands every batch to its
followers once, in log order, whoever folded it."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

import projections.memory as memory_module
from commands.apps import CreateApp
from commands.dispatch import Dispatcher
from domain.codec import decode, encode
from domain.events import AppCreated, Event
from domain.objects import App
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.record import RecordedEvent
from eventstore.store import EventStore
from projections.memory import Folded, MemoryReadModel
from projections.runner import follow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MakeDatabase = Callable[[], Awaitable[str]]


def app_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


class Seen:
    """A follower that keeps what it is handed."""

    wants_changes = 0

    def __init__(self) -> None:
        self.records: list[RecordedEvent] = []

    def applied(self, folded: Folded) -> None:
        self.records += [record for record, _ in folded.pairs]

    def failed(self, error: BaseException) -> None:
        raise AssertionError(f"the fold failed: {error!r}")


Stores = Callable[[], Awaitable[tuple[EventStore, EventStore]]]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_stores(request: pytest.FixtureRequest) -> Stores:
    """Opens this process's log and another process's, on one log."""
    if request.param == "memory":

        async def memory() -> tuple[EventStore, EventStore]:
            shared = InMemoryEventStore()
            return shared, shared

        return memory
    make_database: MakeDatabase = request.getfixturevalue("make_database")

    async def postgres() -> tuple[EventStore, EventStore]:
        dsn = await make_database()
        return await PostgresEventStore.open(dsn), await PostgresEventStore.open(dsn)

    return postgres


async def test_followers_get_every_event_once_in_log_order_whoever_folded_it(
    open_stores: Stores,
):
    """With this process's dispatcher and another process appending at once, the model's
    followers are handed the log, each event once, in id order."""
    mine, theirs = await open_stores()
    model, seen = MemoryReadModel(), Seen()
    model.add_follower(seen)
    dispatcher = Dispatcher(mine, model)
    dispatcher.start()
    following = asyncio.create_task(follow(mine, model))
    try:
        creates = [dispatcher.handle(CreateApp(app_id(n), T0, f"mine-{n}")) for n in range(60)]
        others = [
            theirs.append([encode(AppCreated(App(app_id(1000 + n), f"theirs-{n}", T0, T0)))])
            for n in range(60)
        ]
        await asyncio.gather(*creates, *others)
        assert await model.reached(await mine.last_id(), timeout=10)
        log = [record async for record in mine.read()]
        assert [r.id for r in seen.records] == [r.id for r in log]
        assert len(model.state.apps) == 120
    finally:
        following.cancel()
        await asyncio.wait([following])
        await dispatcher.stop()
        for store in {id(mine): mine, id(theirs): theirs}.values():
            await store.close()


async def test_this_process_never_decodes_what_it_wrote(
    open_stores: Stores, monkeypatch: pytest.MonkeyPatch
):
    """The events this process's dispatcher wrote are folded from the events it decided:
    only the other process's are decoded from the log."""
    decoded: list[int] = []

    def counting(record: RecordedEvent) -> Event:
        decoded.append(record.id)
        return decode(record)

    monkeypatch.setattr(memory_module, "decode", counting)
    mine, theirs = await open_stores()
    model = MemoryReadModel()
    dispatcher = Dispatcher(mine, model)
    dispatcher.start()
    following = asyncio.create_task(follow(mine, model))
    try:
        for n in range(40):  # in turns, so that both sides' news meet the follower
            await asyncio.gather(
                dispatcher.handle(CreateApp(app_id(n), T0, f"mine-{n}")),
                theirs.append([encode(AppCreated(App(app_id(1000 + n), f"t-{n}", T0, T0)))]),
            )
        assert await model.reached(await mine.last_id(), timeout=10)
        theirs_ids = {app_id(1000 + n) for n in range(40)}
        foreign = [r.id async for r in mine.read() if r.object_id in theirs_ids]
        assert sorted(decoded) == foreign
    finally:
        following.cancel()
        await asyncio.wait([following])
        await dispatcher.stop()
        for store in {id(mine): mine, id(theirs): theirs}.values():
            await store.close()
