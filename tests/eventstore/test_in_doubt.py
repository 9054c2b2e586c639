"""An append whose answer does not come: the store finds out whether it committed (ending its
session first, so that it cannot commit later) and says so, or says that it cannot tell.
Never "not written" for an append that commits."""

import asyncio
import time

import asyncpg
import pytest

from eventstore import outcome, postgres
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import OutcomeUnknownError, StoreUnavailableError
from localpg import LocalPG
from tests.eventstore.conftest import ev
from tests.reliability.hang import hung

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "APPEND_TIMEOUT", 1.0)
    monkeypatch.setattr(outcome, "RESOLVE_TIMEOUT", 2.0)


async def object_ids(store: PostgresEventStore) -> list[str]:
    return [e.object_id async for e in store.read()]


async def test_an_append_stuck_past_its_timeout_is_ended_and_answered_not_written(own_pg: LocalPG):
    """An append waiting on a lock past APPEND_TIMEOUT: its session is ended, its rows are
    not there, so it is answered unavailable (retry), and it never lands afterwards."""
    store = await PostgresEventStore.open(own_pg.dsn())
    blocker = await asyncpg.connect(own_pg.dsn())
    try:
        await store.append([ev("before")])
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            with pytest.raises(StoreUnavailableError):
                await store.append([ev("stuck")])
        await store.append([ev("after")])
        await asyncio.sleep(0.5)
        assert await object_ids(store) == ["before", "after"]
    finally:
        await blocker.close()
        await store.close()


async def waiting_for_a_standby(pg: LocalPG) -> asyncpg.Connection:
    """From now on a commit is durable at once but answered only once a standby that does
    not exist confirms it: an answer lost after the commit."""
    admin = await asyncpg.connect(pg.dsn())
    await admin.execute("ALTER DATABASE postgres SET synchronous_commit = on")
    await admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    await admin.execute("SELECT pg_reload_conf()")
    return admin


async def no_standby(admin: asyncpg.Connection) -> None:
    await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
    await admin.execute("SELECT pg_reload_conf()")
    await admin.close()


async def test_an_append_committed_but_unanswered_is_answered_as_written(own_pg: LocalPG):
    """Committed, but the answer never came: the append returns its events, as committed."""
    store = await PostgresEventStore.open(own_pg.dsn())
    admin = await waiting_for_a_standby(own_pg)
    try:
        started = time.monotonic()
        written = await store.append([ev("landed"), ev("too")])
        assert time.monotonic() - started >= 1.0  # it was answered after the timeout
        assert [e.object_id for e in written] == ["landed", "too"]
    finally:
        await no_standby(admin)
    try:
        assert [e async for e in store.read()] == written
    finally:
        await store.close()


async def test_an_append_after_committed_but_unanswered_is_answered_as_written(own_pg: LocalPG):
    """The same for append_after, the writer that holds the lock while it decides."""
    store = await PostgresEventStore.open(own_pg.dsn())
    await store.append([ev("first")])

    def decide(seen: list[RecordedEvent]) -> list[NewEvent]:
        return [ev(f"after-{len(seen)}")]

    admin = await waiting_for_a_standby(own_pg)
    try:
        seen, written = await store.append_after(0, decide)
    finally:
        await no_standby(admin)
    try:
        assert [e.object_id for e in seen] == ["first"]
        assert [e.object_id for e in written] == ["after-1"]
        assert await object_ids(store) == ["first", "after-1"]
    finally:
        await store.close()


@pytest.mark.faults
async def test_an_append_to_a_hung_database_is_answered_outcome_unknown(own_pg: LocalPG):
    """With every database process stopped, nothing can be found out: the outcome is
    unknown, rightly, for the append commits once the database continues."""
    store = await PostgresEventStore.open(own_pg.dsn())
    try:
        await store.append([ev("before")])
        with hung(own_pg), pytest.raises(OutcomeUnknownError):
            await store.append([ev("in-doubt")])
        deadline = time.monotonic() + 15
        while "in-doubt" not in await object_ids(store):
            assert time.monotonic() < deadline, "the append never landed"
            await asyncio.sleep(0.2)
        assert (await store.append([ev("after")]))[0].object_id == "after"
        assert await object_ids(store) == ["before", "in-doubt", "after"]
    finally:
        await store.close()
