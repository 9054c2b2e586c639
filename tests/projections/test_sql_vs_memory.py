"""The SQL read model against the in-memory one: same history, same answers; and the
projector's own promises (resume, rebuild, several projectors on one database)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from projections.memory import MemoryReadModel
from projections.read_model import MemoryQueries
from projections.sql import SqlReadModel
from projections.sql_projector import SqlProjector
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


async def reached_head(model: SqlReadModel, store: EventStore, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while await model.last_event_id() < await store.last_id():
            await asyncio.sleep(0.02)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(OPS, min_size=10, max_size=60),
    batch_size=st.integers(1, 20),
    rebuild_batch_size=st.sampled_from([1, 3, 1000]),
)
def test_random_histories_read_the_same_from_sql_and_memory(
    make_database: MakeDatabase,
    ops: list[tuple[Any, ...]],
    batch_size: int,
    rebuild_batch_size: int,
) -> None:
    """Any history, projected as it goes and then rebuilt, reads the same from SQL as in memory."""

    async def run() -> None:
        store = await PostgresEventStore.open(await make_database())
        try:
            sql = SqlReadModel(store.pool)
            projector = SqlProjector(store, sql, batch_size=batch_size)
            async with History(store) as h:
                await prelude(h)
                for op in ops:
                    await (projector.catch_up() if op[0] == "project" else run_op(h, op))
            await projector.catch_up()
            memory = MemoryQueries(h.model)
            await assert_same(sql, memory)
            await SqlProjector(store, sql, batch_size=rebuild_batch_size).rebuild()
            await assert_same(sql, memory)
        finally:
            await store.close()

    asyncio.run(run())


async def test_two_projectors_on_one_database_apply_each_event_once(
    pg_store: PostgresEventStore, sql_model: SqlReadModel, database_url: str
):
    """Two projectors (two pools, as two processes) catching up, then following, at once."""
    total = await append_synthetic(pg_store, apps=60)
    other = await PostgresEventStore.open(database_url)
    try:
        a = SqlProjector(pg_store, sql_model, batch_size=13)
        b = SqlProjector(other, SqlReadModel(other.pool), batch_size=17)
        await asyncio.gather(a.catch_up(), b.catch_up())
        assert a.applied + b.applied == total
        followers = [asyncio.create_task(p.run()) for p in (a, b)]
        total += await append_synthetic(pg_store, apps=30, first=60, chunk=50)
        await reached_head(sql_model, pg_store)
        for task in followers:
            task.cancel()
        await asyncio.wait(followers)
        assert a.applied + b.applied == total
        await assert_same(sql_model, await folded(pg_store))
    finally:
        await other.close()


async def test_a_restarted_projector_resumes_from_its_position(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """A projector stopped mid-way leaves a position; the next one applies only what follows."""
    await append_synthetic(pg_store, apps=80)
    first = SqlProjector(pg_store, sql_model, batch_size=10)
    running = asyncio.create_task(first.run())
    async with asyncio.timeout(30):
        while await sql_model.last_event_id() == 0:
            await asyncio.sleep(0.005)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    stopped_at = await sql_model.last_event_id()
    assert 0 < stopped_at < await pg_store.last_id()
    await append_synthetic(pg_store, apps=5, first=80)
    second = SqlProjector(pg_store, SqlReadModel(pg_store.pool))
    await second.catch_up()
    assert second.applied == len([e async for e in pg_store.read(after=stopped_at)])
    await assert_same(sql_model, await folded(pg_store))


async def test_a_rebuild_under_a_following_projector_converges(
    pg_store: PostgresEventStore, sql_model: SqlReadModel, database_url: str
):
    """Rebuilding while another projector follows (and the log grows) ends in the same tables."""
    await append_synthetic(pg_store, apps=40)
    live = SqlProjector(pg_store, sql_model, batch_size=50)
    following = asyncio.create_task(live.run())
    await reached_head(sql_model, pg_store)
    other = await PostgresEventStore.open(database_url)
    try:
        rebuilder = SqlProjector(other, SqlReadModel(other.pool), batch_size=40)
        await asyncio.gather(
            rebuilder.rebuild(), append_synthetic(pg_store, apps=20, first=40, chunk=30)
        )
        await reached_head(sql_model, pg_store)
        await assert_same(sql_model, await folded(pg_store))
    finally:
        following.cancel()
        await asyncio.wait([following])
        await other.close()


async def test_rebuild_replays_from_zero_into_empty_tables(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """rebuild() empties the tables, then applies the whole log again."""
    total = await append_synthetic(pg_store, apps=30)
    projector = SqlProjector(pg_store, sql_model)
    await projector.catch_up()
    before = await sql_model.snapshot()
    assert await projector.rebuild() == await pg_store.last_id()
    assert projector.applied == 2 * total
    assert await sql_model.snapshot() == before


async def test_a_dropped_read_model_is_created_again_and_refilled(
    pg_store: PostgresEventStore, sql_model: SqlReadModel
):
    """After its schema, position and migration record are dropped, migrate() and a catch-up
    bring the read model back, whole."""
    await append_synthetic(pg_store, apps=10)
    await SqlProjector(pg_store, sql_model).catch_up()
    before = await sql_model.snapshot()
    async with pg_store.pool.acquire() as conn:
        await conn.execute(
            "DROP SCHEMA read_model CASCADE;"
            "DELETE FROM projection_positions WHERE name = 'sql_read_model';"
            "DELETE FROM schema_migrations WHERE component = 'projections'"
        )
    await sql_model.migrate()
    assert await sql_model.last_event_id() == 0
    await SqlProjector(pg_store, sql_model).catch_up()
    assert await sql_model.snapshot() == before
