"""Writes racing DELETE /apps/:app on two workers sharing one Postgres log: each is answered
either 2xx from the events it recorded, or with a clean 4xx; never a 5xx after a commit."""

import asyncio
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.processes import ROOT, free_port, serve_command

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KEY = "race-key"
AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY)}
DOMAIN = "race.test"
ROUNDS = 6
#: Writes of each kind per round; they run while the app is deleted.
EACH = 6

Write = tuple[str, str, str, dict[str, Any]]  # (kind, method, path, body)


@pytest.fixture
async def service(make_database: Any, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """`serve --workers 2` on a fresh database: (its URL, the database's DSN)."""
    dsn = await make_database()
    port = free_port()
    env = os.environ | {"DATABASE_URL": dsn, "AUTH_KEY": KEY, "SCHEDULER": "off",
                        "LOG_LEVEL": "WARNING", "EVENFLOW_DATA_DIR": str(tmp_path),
                        "DEFAULT_ROUTE_DOMAIN": DOMAIN}  # fmt: skip
    process = subprocess.Popen(serve_command(port, "--workers", "2"), cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession(url, headers=AUTH) as session:
            while True:
                try:
                    async with session.get("/.well-known/status") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the service did not start"
                await asyncio.sleep(0.1)
        yield url, dsn
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


async def ok(session: aiohttp.ClientSession, method: str, path: str, body: object) -> Any:
    async with session.request(method, path, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def victim(session: aiohttp.ClientSession, n: int, keeper: dict[str, Any]) -> list[Write]:
    """An app with a current release, a route and a job; the writes that will race its
    deletion: every kind of write an app has, several times over."""
    app = await ok(session, "POST", "/apps", {"name": f"race{n}"})
    name = app["name"]
    artifact = await ok(session, "POST", "/artifacts", {"type": "file", "uri": f"file:///a/{n}"})
    release_body = {"app_id": app["id"], "artifact": artifact["id"], "processes": {"web": {}}}
    release = (await ok(session, "POST", "/releases", release_body))["id"]
    await ok(session, "PUT", f"/apps/{name}/release", {"id": release})
    (route,) = await ok(session, "GET", f"/apps/{name}/routes", None)
    job = {"id": f"host-{uuid.uuid4()}", "release": release, "state": "starting", "type": "web"}
    await ok(session, "PUT", f"/apps/{name}/jobs/{job['id']}", job)

    def kinds(i: int) -> Iterator[Write]:
        yield "app", "POST", f"/apps/{name}", {"meta": {"round": str(i)}}
        yield "release", "POST", "/releases", release_body
        yield "formation", "PUT", f"/apps/{name}/formations/{release}", {"processes": {"web": i}}
        yield "app_release", "PUT", f"/apps/{name}/release", {"id": release}
        route_body = {"type": "http", "domain": f"r{i}.{name}.{DOMAIN}", "service": "s"}
        yield "route", "POST", f"/apps/{name}/routes", route_body
        update = {"type": "http", "domain": route["domain"], "service": f"s{i}", "path": "/"}
        yield "route", "PUT", f"/apps/{name}/routes/http/{route['id']}", update
        report = {**job, "state": ["up", "stopping", "down"][i % 3]}
        yield "job", "PUT", f"/apps/{name}/jobs/{job['id']}", report
        new_job = {**job, "id": f"host-{uuid.uuid4()}"}
        yield "job", "PUT", f"/apps/{name}/jobs/{new_job['id']}", new_job
        yield "run", "POST", f"/apps/{name}/jobs", {"release": release, "cmd": ["true"]}
        yield "deployment", "POST", f"/apps/{name}/deploy", {"id": release}
        resource = {"external_id": f"x{i}", "apps": [app["id"], keeper["id"]]}
        yield "resource", "PUT", f"/providers/pg/resources/{uuid.uuid4()}", resource

    writes = [write for i in range(EACH) for write in kinds(i)]
    random.shuffle(writes)
    return [("delete", "DELETE", f"/apps/{name}", {}), *writes]


async def answer(url: str, write: Write, delay: float) -> tuple[Write, int, Any]:
    """Send one write on a connection of its own (so either worker may take it)."""
    await asyncio.sleep(delay)
    _, method, path, body = write
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(url, headers=AUTH, connector=connector) as session,
        session.request(method, path, json=body if method != "DELETE" else None) as response,
    ):
        text = await response.text()
        return write, response.status, json.loads(text) if text.startswith("{") else text


def recorded_as(answer: Any, kind: str, logged: dict[tuple[str, str], list[Any]]) -> bool:
    """Whether a 2xx answer is what the write recorded in the log."""
    match kind:
        case "formation":
            scales = logged.get(("scale", f"{answer['app']}:{answer['release']}"), [])
            return any((d["processes"] or {}) == answer.get("processes", {}) for d in scales)
        case "run":
            return any(d["state"] == "pending" for d in logged.get(("job", answer["id"]), []))
        case "deployment":
            return ("deployment", answer["id"]) in logged
        case "app_release":
            return any(
                d["release"] == answer for d in logged.get(("app_release", answer["id"]), [])
            )
        case _:
            return answer in logged.get((kind, answer["id"]), [])


async def test_writes_racing_an_app_deletion_are_never_answered_5xx(service: tuple[str, str]):
    """Many writes of every kind to an app, sent through both workers while the app is
    deleted: each is a 2xx matching its own event in the log, or a clean 4xx."""
    url, dsn = service
    async with aiohttp.ClientSession(url, headers=AUTH) as session:
        keeper = await ok(session, "POST", "/apps", {"name": "keeper"})
        await ok(session, "POST", "/providers", {"name": "pg", "url": "http://127.0.0.1:9/"})
        rounds = [await victim(session, n, keeper) for n in range(ROUNDS)]
    results = []
    for writes in rounds:
        # The deletion goes out while the writes are being sent, 30 ms of them.
        delays = [random.uniform(0.0, 0.03) for _ in writes]
        delays[0] = random.uniform(0.005, 0.02)
        results += await asyncio.gather(
            *(answer(url, w, d) for w, d in zip(writes, delays, strict=True))
        )

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT object_type, object_id, data::text FROM events")
    finally:
        await connection.close()
    logged: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        logged.setdefault((row[0], row[1]), []).append(json.loads(row[2]))

    statuses: dict[int, int] = {}
    for (kind, method, path, _), status, body in results:
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, f"{method} {path}: {status} {body}"
        if kind == "delete":
            assert status == 200, f"{method} {path}: {status} {body}"
        elif status == 200:
            assert recorded_as(body, kind, logged), f"{method} {path} answered {body}"
        else:
            assert status in (400, 404, 409), f"{method} {path}: {status} {body}"
            assert body == "" or set(body) >= {"code", "message", "retry"}
    # The race happened: some writes landed before the deletion and some were refused after.
    assert statuses.get(200, 0) > ROUNDS and statuses.get(404, 0) > 0, statuses
