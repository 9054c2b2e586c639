"""A small but varied history driven through the API (with the log's head after each step),
and the command line run as a subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.controller.provider_server import running_provider

JSON = {"Accept": "application/json"}
JOB = "myhost-00000000-0000-4000-8000-000000000001"
ROOT = Path(__file__).parents[2]


async def ok(response: Any) -> Any:
    assert response.status == 200, await response.text()
    return await response.json() if response.content_length != 0 else None


async def head(client: TestClient) -> int:
    events = await ok(await client.get("/events?count=1", headers=JSON))
    return int(events[0]["id"]) if events else 0


async def build_history(client: TestClient) -> dict[str, Any]:
    """Apps, releases, formations, a job, a route, a deploy, a resource, a deletion.

    Returns the ids made along the way and, under "at", the log head after each step.
    """
    at: dict[str, int] = {}
    app = await ok(await client.post("/apps", json={"name": "shop", "meta": {"team": "a"}}))
    at["created"] = await head(client)
    artifact = await ok(
        await client.post("/artifacts", json={"type": "docker", "uri": "https://e/shop"})
    )
    kinds = {"web": {"cmd": ["web"]}, "worker": {"cmd": ["work"]}}
    releases = []
    for version, processes in (("1", {"web": 1}), ("2", {"web": 3, "worker": 1})):
        body = {"artifact": artifact["id"], "env": {"V": version}, "processes": kinds}
        release = await ok(await client.post("/releases", json=body))
        releases.append(release)
        path = f"/apps/shop/formations/{release['id']}"
        await ok(await client.put(path, json={"processes": processes}))
        await ok(await client.put("/apps/shop/release", json={"id": release["id"]}))
        at[f"v{version}"] = await head(client)
    job = {"id": JOB, "release": releases[1]["id"], "state": "up", "type": "web"}
    await ok(await client.put(f"/apps/shop/jobs/{JOB}", json=job))
    route = {"type": "http", "domain": "shop.example.com", "service": "shop-web"}
    await ok(await client.post("/apps/shop/routes", json=route))
    at["running"] = await head(client)
    batch = await ok(await client.post("/apps", json={"name": "batch"}))
    await ok(await client.post("/apps/batch/deploy", json={"id": releases[0]["id"]}))
    async with running_provider() as provider:
        created = await client.post("/providers", json={"name": "pg", "url": provider.url})
        pg = await ok(created)
        body = {"apps": ["shop"], "config": None}
        await ok(await client.post(f"/providers/{pg['id']}/resources", json=body))
    temp = await ok(await client.post("/apps", json={"name": "temp"}))
    await ok(await client.delete("/apps/temp"))
    meta = {"meta": {"team": "b"}}
    await ok(await client.post("/apps/shop", json=meta))
    at["end"] = await head(client)
    return {"app": app, "batch": batch, "temp": temp, "releases": releases, "at": at}


async def run_cli(
    *args: str, dsn: str | None = None, env: dict[str, str | None] | None = None
) -> tuple[int, str, str]:
    """`python -m controller ARGS`: (exit status, stdout, stderr); `env` adds to the test's
    environment (None: unset)."""
    environment = {**os.environ, "LOG_LEVEL": "warning"}
    if dsn is not None:
        environment["DATABASE_URL"] = dsn
    for name, value in (env or {}).items():
        environment.pop(name, None)
        if value is not None:
            environment[name] = value
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        *args,
        env=environment,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()
