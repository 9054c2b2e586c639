"""The SQL read model's writer inside the service: started with the Postgres log, one
writer per database, retried while the database is away, reported when broken, and what
is left written at shutdown."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

import service.projector as projector_module
from controller import keys
from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import StoreUnavailableError
from localpg import LocalPG
from projections.memory import MemoryReadModel
from projections.runner import follow
from projections.sql import SqlReadModel
from service.projector import HEALTH_NAME, SqlWriter
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY
from tests.projections.synthetic import append_synthetic

SETTINGS = Settings(auth_keys=(AUTH_KEY,))
# pg_store before aiohttp_client in a test's parameters: the service stops before its log
# closes (the writer holds a connection of the log's pool while it leads).


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


class Process:
    """What a controller process runs for the SQL model: a fold following the log, and
    its writer (its changes kept from the start)."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.model = MemoryReadModel()
        self.writer = SqlWriter(store, self.model, leader_retry=0.05, pace=0.01)
        self.model.add_follower(self.writer.recent)
        self.health: dict[str, str] = {}
        self.tasks = [
            asyncio.create_task(follow(store, self.model)),
            asyncio.create_task(self.writer.run(self.health)),
        ]

    async def stop(self) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


@pytest.fixture
async def processes() -> AsyncIterator[list[Process]]:
    """Processes a test starts (append them): stopped at its end."""
    started: list[Process] = []
    yield started
    for process in started:
        await process.stop()


async def at_head(sql: SqlReadModel, store: PostgresEventStore) -> bool:
    try:
        return await sql.last_event_id() == await store.last_id()
    except (StoreUnavailableError, asyncpg.UndefinedTableError):
        return False  # away, or the writer has not created its tables yet


@pytest.mark.postgres
async def test_the_service_keeps_the_sql_read_model_current(
    pg_store: PostgresEventStore, aiohttp_client: Any
):
    """An app created through the API shows in the SQL read model as the API returns it."""
    client = await aiohttp_client(create_app(SETTINGS, store=pg_store), headers=AUTH_HEADERS)
    response = await client.post("/apps", json={"name": "projected"})
    assert response.status == 200
    created = await response.json()
    sql = SqlReadModel(pg_store.pool)
    await until(lambda: at_head(sql, pg_store))
    assert await sql.app("projected") == created
    assert client.app[keys.HEALTH][HEALTH_NAME] == ""


async def test_the_in_memory_log_runs_no_projector(aiohttp_client: Any):
    """With the in-memory log there is no SQL read model, and no health entry for one."""
    client = await aiohttp_client(create_app(SETTINGS, store=InMemoryEventStore()))
    assert HEALTH_NAME not in client.app[keys.HEALTH]


@pytest.mark.postgres
async def test_one_process_writes_and_the_next_takes_over_where_it_stopped(
    pg_store: PostgresEventStore, database_url: str, processes: list[Process]
):
    """Of two processes one writes; when it stops, the other writes what changed since,
    from the changes it kept (no rewrite of everything)."""
    other = await PostgresEventStore.open(database_url)
    try:
        processes += [Process(pg_store), Process(other)]
        sql = SqlReadModel(pg_store.pool)
        await append_synthetic(pg_store, apps=10)
        await until(lambda: at_head(sql, pg_store))
        assert [p.writer.leading for p in processes].count(True) == 1
        first, second = processes if processes[0].writer.leading else processes[::-1]
        await first.stop()
        await append_synthetic(pg_store, apps=10, first=10)
        await until(lambda: at_head(sql, pg_store))
        assert second.writer.leading and second.writer.rows > 0
        assert first.writer.resyncs == second.writer.resyncs == 0
    finally:
        for process in processes:  # before the log closes: the writer holds a connection
            await process.stop()
        await other.close()


@pytest.mark.postgres
async def test_a_stopping_service_writes_what_is_left(
    pg_store: PostgresEventStore, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
):
    """A write acknowledged just before the service stops is in the SQL model after it."""
    monkeypatch.setattr(projector_module, "PACE", 60.0)  # no write but the first and the last
    # Something to write at start: the first write then comes before the POST, and the pace
    # keeps the next one back (with an empty log the POST's write would be the first).
    await append_synthetic(pg_store, apps=1)
    client = await aiohttp_client(create_app(SETTINGS, store=pg_store), headers=AUTH_HEADERS)
    sql = SqlReadModel(pg_store.pool)
    await until(lambda: at_head(sql, pg_store))
    assert (await client.post("/apps", json={"name": "last"})).status == 200
    assert not await at_head(sql, pg_store)
    await client.close()
    assert await at_head(sql, pg_store)
    assert (await sql.app("last") or {}).get("name") == "last"


@pytest.mark.postgres
async def test_an_unavailable_database_is_reported_and_retried(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch, processes: list[Process]
):
    """While the database is away the writer says so; then it starts again and writes."""
    monkeypatch.setattr(projector_module, "RETRY_MIN", 0.01)
    failures = [StoreUnavailableError("gone"), StoreUnavailableError("still gone")]
    migrate = SqlReadModel.migrate
    reported: list[str] = []

    async def flaky(sql: SqlReadModel) -> None:
        if failures:
            if processes:
                reported.append(processes[0].health.get(HEALTH_NAME, "none"))
            raise failures.pop(0)
        await migrate(sql)

    monkeypatch.setattr(SqlReadModel, "migrate", flaky)
    await append_synthetic(pg_store, apps=2)
    processes.append(Process(pg_store))
    await until(lambda: at_head(SqlReadModel(pg_store.pool), pg_store))
    assert reported == ["none", "unavailable: gone"]
    assert processes[0].health[HEALTH_NAME] == ""


@pytest.mark.postgres
async def test_a_broken_writer_is_reported_unhealthy(
    pg_store: PostgresEventStore, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
):
    """A failure other than unavailability makes the status 500 (and the writer is started
    again, failing again here)."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(SqlReadModel, "write", broken)
    client = await aiohttp_client(create_app(SETTINGS, store=pg_store), headers=AUTH_HEADERS)
    health = client.app[keys.HEALTH]
    assert (await client.post("/apps", json={"name": "unwritten"})).status == 200

    async def failed() -> bool:
        status: str = health.get(HEALTH_NAME, "")
        return status.startswith("failed")

    await until(failed)
    response = await client.get("/.well-known/status")
    assert response.status == 500
    assert "bug" in (await response.json())["data"]["problems"][HEALTH_NAME]


@pytest.mark.postgres
async def test_the_writer_survives_a_database_restart(own_pg: LocalPG, processes: list[Process]):
    """Stopping and starting PostgreSQL under the writer loses and repeats nothing."""
    store = await PostgresEventStore.open(own_pg.dsn())
    try:
        processes.append(Process(store))
        sql = SqlReadModel(store.pool)
        await append_synthetic(store, apps=20)
        await until(lambda: at_head(sql, store))
        own_pg.stop()
        await asyncio.sleep(0.5)
        own_pg.start()
        await until(lambda: asyncio.sleep(0.05, result=store.listening))
        await append_synthetic(store, apps=20, first=20)
        await until(lambda: at_head(sql, store), timeout=40)
        health = processes[0].health[HEALTH_NAME]
        assert health == "" or health.startswith("unavailable")
        assert not any(task.done() for task in processes[0].tasks)
        assert len((await sql.snapshot())["jobs"]) == 40 * 10
    finally:
        await processes.pop().stop()
        await store.close()
