"""The SQL read model against the in-memory one: same history, same answers, the SQL model
written from the fold's changes (the sink); and the writers' own promises (resume, resync,
rebuild, several writers on one database)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.codec import encode
from domain.events import RouteDeleted
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from projections.memory import MemoryReadModel
from projections.read_model import MemoryQueries
from projections.recent_changes import CHANGES_EVENTS, RecentChanges
from projections.runner import follow
from projections.sql import SqlReadModel
from replay.restore import rebuild_sql
from service.projector import SqlWriter
from tests.projections.answers import every_answer
from tests.projections.history import OPS, History, prelude, run_op
from tests.projections.synthetic import append_synthetic

pytestmark = pytest.mark.postgres

MakeDatabase = Callable[[], Awaitable[str]]


async def assert_same(sql: SqlReadModel, memory: MemoryQueries) -> None:
    snapshot = await memory.snapshot()
    assert await sql.snapshot() == snapshot
    assert await every_answer(sql, snapshot) == await every_answer(memory, snapshot)


async def folded(store: EventStore) -> MemoryQueries:
    """The in-memory model of everything in `store`."""
    model = MemoryReadModel()
    await model.catch_up(store)
    return MemoryQueries(model)


def writer(
    store: PostgresEventStore, model: MemoryReadModel, limit: int = CHANGES_EVENTS
) -> SqlWriter:
    """A writer of the SQL model from `model`'s fold, keeping its changes from now on."""
    written = SqlWriter(store, model, recent=RecentChanges(model.last_id, limit))
    model.add_follower(written.recent)
    return written


async def caught_up(model: MemoryReadModel, store: EventStore) -> None:
    assert await model.reached(await store.last_id(), timeout=30)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=10, max_size=60), kept=st.sampled_from([1, 7, 100_000]))
def test_random_histories_read_the_same_from_sql_and_memory(
    make_database: MakeDatabase, ops: list[tuple[Any, ...]], kept: int
) -> None:
    """Any history, written to SQL as it goes (by changes, or whole when too few are kept)
    and then rebuilt, reads the same from SQL as in memory."""

    async def run() -> None:
        store = await PostgresEventStore.open(await make_database())
        try:
            sql = SqlReadModel(store.pool)
            await sql.migrate()
            async with History(store) as h:
                projection = writer(store, h.model, kept)
                await prelude(h)
                for op in ops:
                    await (projection.write() if op[0] == "project" else run_op(h, op))
            await projection.write()
            memory = MemoryQueries(h.model)
            await assert_same(sql, memory)
            await rebuild_sql(store)
            await assert_same(sql, memory)
        finally:
            await store.close()

    asyncio.run(run())


async def test_two_writers_on_one_database_converge(
    pg_store: PostgresEventStore, sql_model: SqlReadModel, database_url: str
):
    """Two processes' writers (two pools, two folds) writing at once, while the log grows,
    leave the tables as the log's fold."""
    await append_synthetic(pg_store, apps=30)
    other = await PostgresEventStore.open(database_url)
    models = [MemoryReadModel(), MemoryReadModel()]
    writers = [writer(store, model) for store, model in zip((pg_store, other), models, strict=True)]
    followers = [
        asyncio.create_task(follow(s, m)) for s, m in zip((pg_store, other), models, strict=True)
    ]

    async def keep_writing(sink: SqlWriter, until: asyncio.Event) -> None:
        while not until.is_set():
            await sink.write()
            await asyncio.sleep(0.005)

    try:
        done = asyncio.Event()
        writing = [asyncio.create_task(keep_writing(w, done)) for w in writers]
        await append_synthetic(pg_store, apps=30, first=30, chunk=40)
        for model, store in zip(models, (pg_store, other), strict=True):
            await caught_up(model, store)
        done.set()
        await asyncio.gather(*writing)
        for w in writers:
            await w.write()
        assert await sql_model.last_event_id() == await pg_store.last_id()
        await assert_same(sql_model, await folded(pg_store))
    finally:
        for task in followers:
            task.cancel()
        await asyncio.wait(followers)
        await other.close()


async def test_a_new_writer_writes_what_changed_since_the_stored_position(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """A writer whose fold kept the changes since the stored position writes only those."""
    await append_synthetic(pg_store, apps=40)
    first = writer(pg_store, MemoryReadModel())
    await first.model.catch_up(pg_store)
    stored = (await first.write()).position
    await append_synthetic(pg_store, apps=3, first=40)
    second = writer(pg_store, MemoryReadModel())
    await second.model.catch_up(pg_store)
    written = await second.write()
    head = await pg_store.last_id()
    assert (written.position, written.complete, second.resyncs) == (head, False, 0)
    events = len([e async for e in pg_store.read(after=stored)])
    assert 0 < written.rows <= 2 * events < first.rows
    await assert_same(sql_model, await folded(pg_store))


async def test_a_writer_that_kept_too_little_writes_everything(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """A writer whose changes do not reach back to the stored position writes its whole
    state; what the state forgot meanwhile (routes deleted) is marked deleted in the tables."""
    model = MemoryReadModel()
    first = writer(pg_store, model)
    await append_synthetic(pg_store, apps=5)
    await model.catch_up(pg_store)
    await first.write()
    route = model.state.routes[min(model.state.routes)]
    await pg_store.append([encode(RouteDeleted(route))])
    await append_synthetic(pg_store, apps=3, first=5)
    late = MemoryReadModel()
    await late.catch_up(pg_store)
    second = writer(pg_store, late)  # it keeps changes only from now on
    written = await second.write()
    assert (written.complete, second.resyncs) == (True, 1)
    await assert_same(sql_model, await folded(pg_store))
    assert await deleted_at(pg_store, "routes", "id = $1", route.id) == late.last_at


async def test_a_rebuild_under_a_running_writer_converges(
    pg_store: PostgresEventStore, sql_model: SqlReadModel, database_url: str
):
    """Rebuilding while another process's writer writes (and the log grows) ends in the
    same tables."""
    await append_synthetic(pg_store, apps=40)
    model = MemoryReadModel()
    live = writer(pg_store, model)
    following = asyncio.create_task(follow(pg_store, model))
    other = await PostgresEventStore.open(database_url)

    async def keep_writing(until: asyncio.Event) -> None:
        while not until.is_set():
            await live.write()
            await asyncio.sleep(0.005)

    done = asyncio.Event()
    writing = asyncio.create_task(keep_writing(done))
    try:
        await asyncio.gather(
            rebuild_sql(other), append_synthetic(pg_store, apps=20, first=40, chunk=30)
        )
        await caught_up(model, pg_store)
        done.set()
        await writing
        await live.write()
        await assert_same(sql_model, await folded(pg_store))
    finally:
        done.set()
        following.cancel()
        await asyncio.wait([following, writing])
        await other.close()


async def test_rebuild_writes_the_whole_fold_into_empty_tables(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """rebuild-sql empties the tables and writes the log's fold, at the log's head."""
    await append_synthetic(pg_store, apps=30)
    assert await rebuild_sql(pg_store) == await pg_store.last_id()
    await assert_same(sql_model, await folded(pg_store))


async def test_a_dropped_read_model_is_created_again_and_refilled(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """After its schema, position and migration record are dropped, migrate() and a write
    bring the read model back, whole."""
    await append_synthetic(pg_store, apps=10)
    projection = writer(pg_store, MemoryReadModel())
    await projection.model.catch_up(pg_store)
    await projection.write()
    before = await sql_model.snapshot()
    async with pg_store.pool.acquire() as conn:
        await conn.execute(
            "DROP SCHEMA read_model CASCADE;"
            "DELETE FROM projection_positions WHERE name = 'sql_read_model';"
            "DELETE FROM schema_migrations WHERE component = 'projections'"
        )
    await sql_model.migrate()
    assert await sql_model.last_event_id() == 0
    assert (await projection.write()).complete
    assert await sql_model.snapshot() == before


async def deleted_at(store: PostgresEventStore, table: str, where: str, *args: Any) -> Any:
    async with store.pool.acquire() as conn:
        return await conn.fetchval(
            f"SELECT deleted_at FROM read_model.{table} WHERE {where}", *args
        )


async def test_deletions_carry_the_time_of_the_event_that_deleted(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """A deleted route's row says when its deletion was committed, and a formation deleted
    twice keeps the time of its first deletion."""
    async with History(pg_store) as h:
        projection = writer(pg_store, h.model)
        await prelude(h)
        app_id = sorted(h.model.state.apps)[1]
        release_id = next(iter(h.model.state.app_formations[app_id]))
        route_id = next(iter(h.model.state.app_routes[app_id]))
        await run_op(h, ("delete_route", sorted(h.model.state.routes).index(route_id)))
        await projection.write()
        first = await run_op_at(
            h, ("scale", 1, sorted(h.model.state.releases).index(release_id), None)
        )
        await projection.write()
        await run_op_at(h, ("scale", 1, sorted(h.model.state.releases).index(release_id), None))
        await projection.write()
    route_deleted = [e async for e in pg_store.read() if e.object_type == "route_deletion"]
    assert await deleted_at(pg_store, "routes", "id = $1", route_id) == route_deleted[-1].created_at
    formation = await deleted_at(
        pg_store, "formations", "app_id = $1 AND release_id = $2", app_id, release_id
    )
    assert formation == first


async def run_op_at(h: History, op: tuple[Any, ...]) -> datetime:
    """Carry out `op`; the commit time of its last event."""
    before = h.model.last_id
    await run_op(h, op)
    assert h.model.last_id > before, f"{op} recorded nothing"
    assert h.model.last_at is not None
    return h.model.last_at


async def test_a_stopped_writer_resumes_from_the_stored_position(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """A writer cancelled mid-way leaves the tables whole at some position; the next write
    goes on from there."""
    model = MemoryReadModel()
    projection = writer(pg_store, model)
    following = asyncio.create_task(follow(pg_store, model))
    appending = asyncio.create_task(append_synthetic(pg_store, apps=60, chunk=20))
    try:
        async with asyncio.timeout(30):
            while (await projection.write()).position == 0:
                await asyncio.sleep(0.005)
        running = asyncio.create_task(projection.write())
        await asyncio.sleep(0.001)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await appending
        await caught_up(model, pg_store)
        assert (await projection.write()).position == await pg_store.last_id()
        await assert_same(sql_model, await folded(pg_store))
    finally:
        following.cancel()
        await asyncio.wait([following, appending])
