"""The service with SCHEDULER=local, driven through its API: apps, releases, scales, jobs."""

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from controller.app import create_app
from eventstore.store import EventStore
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS
from tests.host.machine import WEB_PY, make_artifact

WORKER = "while true; do echo working; sleep 0.2; done"


async def start(aiohttp_client: AiohttpClient, settings: Settings, store: EventStore) -> TestClient:
    return await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)


async def post(client: TestClient, path: str, body: object) -> Any:
    response = await client.post(path, json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def released_app(client: TestClient, root: Path, **processes: dict[str, Any]) -> dict:
    """An app whose release runs `processes` from an artifact holding web.py."""
    artifact_dir = make_artifact(root, **{"web.py": WEB_PY})
    app = await post(client, "/apps", {"name": "shop"})
    artifact = await post(client, "/artifacts", {"type": "file", "uri": artifact_dir.as_uri()})
    release = await post(client, "/releases", {"artifact": artifact["id"], "processes": processes})
    response = await client.put(f"/apps/{app['id']}/release", json={"id": release["id"]})
    assert response.status == 200
    return {**app, "release": release["id"]}


async def scale(client: TestClient, app: dict, **counts: int) -> None:
    path = f"/apps/{app['id']}/formations/{app['release']}"
    response = await client.put(path, json={"processes": counts})
    assert response.status == 200, await response.text()


async def jobs(client: TestClient, app: dict, state: str | None = None) -> list[dict]:
    listed = await (await client.get(f"/apps/{app['id']}/jobs")).json()
    return [j for j in listed if state is None or j["state"] == state]


async def until(condition: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def up_counts(client: TestClient, app: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in await jobs(client, app, "up"):
        counts[job["type"]] = counts.get(job["type"], 0) + 1
    return counts
