"""PostgreSQL restarted in the middle of a deployment and of a backup: the deployment ends
(complete or failed, never stuck), and the backup completes or fails visibly (never a short
tar that looks whole)."""

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from domain.codec import encode
from domain.events import ArtifactCreated
from domain.objects import Artifact
from eventstore.postgres import PostgresEventStore
from localpg import LocalPG
from replay.archive import ArchiveError
from replay.reader import ArchiveReader, verify_archive
from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, Service

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

#: Seconds the database is away.
DOWN = 3.0


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, retry: bool = True
) -> Any:
    """A JSON call; with `retry`, 503s and refused connections are retried (as a client should)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            async with session.request(
                method, url, data=None if body is None else orjson.dumps(body), headers=AUTH | JSON
            ) as r:
                text = await r.read()
                if r.status == 503 and retry and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    continue
                assert r.status == 200, (method, url, r.status, text)
                return orjson.loads(text) if text else None
        except aiohttp.ClientConnectionError:
            if not retry or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class Scheduler:
    """Plays Flynn's scheduler over HTTP (the service runs with SCHEDULER=off): polls the
    app's formations and reports jobs started or stopped to match, retrying while the
    service answers 503."""

    def __init__(self, session: aiohttp.ClientSession, url: str, app: str) -> None:
        self.session, self.url, self.app = session, url, app
        self.running: dict[tuple[str, str], list[str]] = {}

    async def run(self) -> None:
        while True:
            formations = await call(self.session, "GET", f"{self.url}/apps/{self.app}/formations")
            for formation in formations:
                for kind, count in (formation.get("processes") or {}).items():
                    await self._reconcile(formation["release"], kind, count)
            await asyncio.sleep(0.05)

    async def _reconcile(self, release: str, kind: str, count: int) -> None:
        jobs = self.running.setdefault((release, kind), [])
        while len(jobs) > count:
            await self._report(jobs.pop(), release, kind, "down")
        while len(jobs) < count:
            job = f"host-{uuid.uuid4()}"
            await self._report(job, release, kind, "starting")
            await self._report(job, release, kind, "up")
            jobs.append(job)

    async def _report(self, job: str, release: str, kind: str, state: str) -> None:
        body = {"id": job, "release": release, "type": kind, "state": state}
        await call(self.session, "PUT", f"{self.url}/apps/{self.app}/jobs/{job}", body)


async def restart(pg: LocalPG) -> None:
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(DOWN)
    pg.start()  # in the main thread: the server's parent-death signal follows it


async def test_a_deployment_ends_when_the_database_restarts_midway(
    own_pg: LocalPG,
    service: Service,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
):
    """A one-by-one deployment whose database restarts midway ends complete or failed."""
    url = service.url
    app = await call(
        session, "POST", f"{url}/apps", {"strategy": "one-by-one", "deploy_timeout": 20}
    )
    artifact = await call(
        session, "POST", f"{url}/artifacts", {"type": "docker", "uri": "https://x/i"}
    )
    kinds = {"web": {"cmd": ["serve"]}}
    old, new = [
        (
            await call(
                session, "POST", f"{url}/releases", {"artifact": artifact["id"], "processes": kinds}
            )
        )["id"]
        for _ in range(2)
    ]
    await call(session, "PUT", f"{url}/apps/{app['id']}/release", {"id": old})
    await call(
        session, "PUT", f"{url}/apps/{app['id']}/formations/{old}", {"processes": {"web": 4}}
    )
    scheduler = asyncio.create_task(Scheduler(session, url, app["id"]).run())
    try:
        deployment = await call(session, "POST", f"{url}/apps/{app['id']}/deploy", {"id": new})
        await asyncio.sleep(0.3)  # a step or two taken
        status = (await call(session, "GET", f"{url}/deployments/{deployment['id']}"))["status"]
        assert status == "pending" or status == "running", "the deployment ended before the restart"
        await restart(own_pg)
        started = time.monotonic()
        while True:
            found = await call(session, "GET", f"{url}/deployments/{deployment['id']}")
            if found["status"] in ("complete", "failed"):
                break
            assert time.monotonic() - started < 60, f"the deployment is stuck: {found}"
            await asyncio.sleep(0.1)
    finally:
        scheduler.cancel()
    report(request, "deployment across a database restart", found["status"])
    report(
        request,
        "deployment ended after the database returned (s)",
        f"{time.monotonic() - started:.2f}",
    )


async def test_a_backup_cut_by_a_database_restart_fails_visibly(
    own_pg: LocalPG, workdir: Path, session: aiohttp.ClientSession
):
    """A backup whose database goes away midway is a broken download without a manifest; the
    next backup, once the database is back, is whole."""
    dsn = own_pg.dsn("evenflow")
    store = await PostgresEventStore.open(dsn)
    try:
        now = datetime.now(UTC)
        for batch in range(40):  # 40 000 events: pages of the log are read as the tar streams
            await store.append(
                [
                    encode(
                        ArtifactCreated(
                            Artifact(str(uuid.uuid4()), "docker", f"https://x/{batch}/{n}", now)
                        )
                    )
                    for n in range(1000)
                ]
            )
    finally:
        await store.close()
    service = Service(dsn, workdir)
    try:
        await service.ready(session)
        received = bytearray()
        failed = False
        async with session.get(f"{service.url}/backup", headers=AUTH) as r:
            assert r.status == 200
            restarting: asyncio.Task[None] | None = None
            try:
                async for chunk in r.content.iter_chunked(64 * 1024):
                    received += chunk
                    if restarting is None:  # the download has begun: cut the database now
                        restarting = asyncio.create_task(restart(own_pg))
                    await asyncio.sleep(0.01)  # a slow reader: the backup is still streaming
            except aiohttp.ClientPayloadError:
                failed = True
            assert restarting is not None
            await restarting
        assert failed, "the backup completed: the restart came too late to test anything"
        assert b"manifest.json" not in received
        path = workdir / "cut.tar"
        path.write_bytes(received)
        with pytest.raises(ArchiveError):
            list(ArchiveReader(path))
        await _a_whole_backup(session, service, workdir)
    finally:
        service.stop()


async def _a_whole_backup(session: aiohttp.ClientSession, service: Service, workdir: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            async with session.get(f"{service.url}/backup", headers=AUTH) as r:
                if r.status == 200:
                    path = workdir / "whole.tar"
                    path.write_bytes(await r.read())
                    break
                assert r.status == 503 and time.monotonic() < deadline
        except aiohttp.ClientConnectionError as exc:
            state = "running" if service.proc.poll() is None else f"exited ({service.proc.poll()})"
            raise AssertionError(f"{exc}; the service is {state}:\n{service.log()}") from exc
        await asyncio.sleep(0.2)
    assert verify_archive(path).event_count >= 40_000
