"""A restart rebuilds every object from the log: all reads answer exactly as before."""

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from controller import keys
from controller.app import create_app
from eventstore.postgres import PostgresEventStore
from projections.read_model import MemoryQueries
from projections.sql import SqlReadModel
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY

pytestmark = pytest.mark.postgres

JSON_ACCEPT = {"Accept": "application/json"}


async def build_history(client: TestClient) -> None:
    artifact = await (
        await client.post("/artifacts", json={"type": "docker", "uri": "https://e/a"})
    ).json()
    for name in ("alpha", "beta", "gamma"):
        await client.post("/apps", json={"name": name, "meta": {"team": name}})
    releases = []
    for n in range(3):
        body = {
            "artifact": artifact["id"],
            "env": {"N": str(n)},
            "processes": {"web": {"cmd": ["w"]}},
        }
        releases.append(await (await client.post("/releases", json=body)).json())
    await client.put("/apps/alpha/release", json={"id": releases[0]["id"]})
    await client.put("/apps/alpha/release", json={"id": releases[1]["id"]})
    await client.put("/apps/beta/release", json={"id": releases[2]["id"]})
    await client.post("/apps/beta", json={"strategy": "one-by-one", "deploy_timeout": 90})
    await client.put(f"/apps/alpha/formations/{releases[1]['id']}", json={"processes": {"web": 2}})
    job = {
        "id": "host-00000000-0000-4000-8000-000000000001",
        "release": releases[1]["id"],
        "type": "web",
        "state": "up",
    }
    await client.put(f"/apps/alpha/jobs/{job['id']}", json=job)
    await client.post("/apps/beta/routes", json={"type": "tcp", "service": "beta-db", "port": 0})
    await client.post("/apps/beta/deploy", json={"id": releases[0]["id"]})
    await client.delete("/apps/gamma")


async def every_read(client: TestClient) -> dict[str, Any]:
    """The answer of every read endpoint, keyed by path."""
    reads: dict[str, Any] = {}

    async def get(path: str, headers: dict[str, str] | None = None) -> Any:
        response = await client.get(path, headers=headers)
        reads[path] = (response.status, await response.read())
        return await response.json() if response.status == 200 else None

    for app in await get("/apps"):
        for suffix in ("", "/release", "/releases", "/jobs", "/routes", "/resources"):
            await get(f"/apps/{app['id']}{suffix}")
        for formation in await get(f"/apps/{app['id']}/formations"):
            await get(f"/apps/{app['id']}/formations/{formation['release']}?expand=true")
        for deployment in await get(f"/apps/{app['id']}/deployments"):
            await get(f"/deployments/{deployment['id']}")
    await get("/formations?active=true")
    await get("/active-jobs")
    for release in await get("/releases"):
        await get(f"/releases/{release['id']}")
    for artifact in await get("/artifacts"):
        await get(f"/artifacts/{artifact['id']}")
    for event in await get("/events", JSON_ACCEPT):
        await get(f"/events/{event['id']}")
    return reads


async def test_every_read_is_identical_after_a_restart(aiohttp_client: Any, make_database: Any):
    """Stop the service and start a new one on the same database: every answer is the same."""
    dsn = await make_database()
    settings = Settings(auth_keys=(AUTH_KEY,), default_route_domain="example.test")

    store = await PostgresEventStore.open(dsn)
    first = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
    await build_history(first)
    before = await every_read(first)
    await first.close()
    await store.close()

    store = await PostgresEventStore.open(dsn)
    second = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
    after = await every_read(second)
    # The SQL read model, projected by the service, equals the fold in memory.
    sql = SqlReadModel(store.pool)
    async with asyncio.timeout(20):
        while await sql.last_event_id() < await store.last_id():
            await asyncio.sleep(0.02)
    memory = MemoryQueries(second.app[keys.READ_MODEL])
    assert await sql.snapshot() == await memory.snapshot()
    await second.close()
    await store.close()

    assert len(before) > 40
    assert after == before
