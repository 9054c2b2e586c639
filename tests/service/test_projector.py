"""The SQL projector inside the service: started with the Postgres log, retried while the
database is away, reported when broken."""

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import service.projector as projector_module
from controller import keys
from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import StoreUnavailableError
from localpg import LocalPG
from projections.sql import SqlReadModel
from service.projector import HEALTH_NAME, project
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY
from tests.projections.synthetic import append_synthetic

SETTINGS = Settings(auth_keys=(AUTH_KEY,))


async def until(condition: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


@pytest.mark.postgres
async def test_the_service_keeps_the_sql_read_model_current(
    aiohttp_client: Any, pg_store: PostgresEventStore
):
    """An app created through the API shows in the SQL read model as the API returns it."""
    client = await aiohttp_client(create_app(SETTINGS, store=pg_store), headers=AUTH_HEADERS)
    response = await client.post("/apps", json={"name": "projected"})
    assert response.status == 200
    created = await response.json()
    sql = SqlReadModel(pg_store.pool)

    async def caught_up() -> bool:
        return await sql.last_event_id() == await pg_store.last_id()

    await until(caught_up)
    assert await sql.app("projected") == created
    assert client.app[keys.HEALTH][HEALTH_NAME] == ""


async def test_the_in_memory_log_runs_no_projector(aiohttp_client: Any):
    """With the in-memory log there is no SQL read model, and no health entry for one."""
    client = await aiohttp_client(create_app(SETTINGS, store=InMemoryEventStore()))
    assert HEALTH_NAME not in client.app[keys.HEALTH]


class FlakyProjector:
    """Stands in for SqlProjector: fails as told, one failure per start, then idles."""

    failures: ClassVar[list[Exception]] = []
    starts: ClassVar[int] = 0

    def __init__(self, *args: object) -> None:
        pass

    async def run(self) -> None:
        FlakyProjector.starts += 1
        if FlakyProjector.failures:
            raise FlakyProjector.failures.pop(0)
        await asyncio.Event().wait()


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FlakyProjector]:
    monkeypatch.setattr(projector_module, "SqlProjector", FlakyProjector)
    monkeypatch.setattr(projector_module, "RETRY_MIN", 0.01)
    FlakyProjector.failures = []
    FlakyProjector.starts = 0
    return FlakyProjector


@pytest.mark.postgres
async def test_an_unavailable_database_is_reported_and_retried(
    flaky: type[FlakyProjector], pg_store: PostgresEventStore
):
    """While the database is away the projector says so; then it starts again and is healthy."""
    flaky.failures = [StoreUnavailableError("gone"), StoreUnavailableError("still gone")]
    health: dict[str, str] = {}
    task = asyncio.create_task(project(pg_store, health))
    try:

        async def restarted() -> bool:
            return flaky.starts == 3

        await until(restarted)
        assert health[HEALTH_NAME] == ""
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.wait([task])


@pytest.mark.postgres
async def test_a_broken_projector_is_reported_unhealthy(
    aiohttp_client: Any, flaky: type[FlakyProjector], pg_store: PostgresEventStore
):
    """A failure other than unavailability stops the projector and makes the status 500."""
    flaky.failures = [RuntimeError("bug")]
    client = await aiohttp_client(create_app(SETTINGS, store=pg_store), headers=AUTH_HEADERS)
    health = client.app[keys.HEALTH]

    async def failed() -> bool:
        status: str = health.get(HEALTH_NAME, "")
        return status.startswith("failed")

    await until(failed)
    response = await client.get("/.well-known/status")
    assert response.status == 500
    assert "bug" in (await response.json())["data"]["problems"][HEALTH_NAME]
    assert flaky.starts == 1


@pytest.fixture
async def own_server() -> AsyncIterator[LocalPG]:
    """A PostgreSQL of this test's own, to stop and start."""
    with (
        tempfile.TemporaryDirectory(prefix="pgproj-") as root,
        LocalPG(Path(root), fast=True) as pg,
    ):
        yield pg


@pytest.mark.postgres
async def test_the_projector_survives_a_database_restart(own_server: LocalPG):
    """Stopping and starting PostgreSQL under the projector loses and repeats nothing."""
    store = await PostgresEventStore.open(own_server.dsn())
    health: dict[str, str] = {}
    task = asyncio.create_task(project(store, health))
    sql = SqlReadModel(store.pool)

    async def caught_up() -> bool:
        try:
            return await sql.last_event_id() == await store.last_id()
        except StoreUnavailableError:
            return False

    async def migrated() -> bool:
        return health.get(HEALTH_NAME) == ""

    try:
        await until(migrated)
        await append_synthetic(store, apps=20)
        await until(caught_up)
        own_server.stop()
        await asyncio.sleep(0.5)
        own_server.start()
        await append_synthetic(store, apps=20, first=20)
        await until(caught_up, timeout=40)
        assert health[HEALTH_NAME] == "" or health[HEALTH_NAME].startswith("unavailable")
        assert not task.done()
        model = SqlReadModel(store.pool)
        assert len((await model.snapshot())["jobs"]) == 40 * 10
    finally:
        task.cancel()
        await asyncio.wait([task])
        await store.close()
