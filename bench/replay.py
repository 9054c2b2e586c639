"""The replay suite: backup, restore and in-memory rebuilds of a 1M-event log.

A synthetic but realistic log (200 apps deployed over and over: releases, deployments,
formations, jobs starting, up and down, routes, resources) is written as a backup archive,
restored into a scratch database by COPY, backed up again from the database, checked, and
folded in memory from the file and from the database.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs
import orjson

from bench import Usage, scratch_database, server
from bench.report import Row, Target
from bench.sse import machine_cpu
from domain.codec import encode
from domain.events import (
    AppCreated,
    AppReleaseSet,
    ArtifactCreated,
    DeploymentCreated,
    DeploymentStatusChanged,
    Event,
    FormationScaled,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    ResourceCreated,
    RouteCreated,
)
from domain.objects import App, Artifact, Deployment, Job, Provider, Release, Resource, Route
from domain.states import DeploymentStatus, JobState
from eventstore.postgres import PostgresEventStore
from eventstore.record import RecordedEvent
from eventstore.store import LogReader
from projections.memory import collector_paused
from replay.archive import ArchiveWriter
from replay.fold import rebuild
from replay.progress import Progress
from replay.reader import verify_archive
from replay.restore import check_database, load
from replay.source import ArchiveSource
from service.backup import archive_chunks


@attrs.frozen
class Plan:
    events: int
    runs: int  # of each read-only figure


FULL = Plan(events=1_000_000, runs=2)
QUICK = Plan(events=50_000, runs=1)
APPS = 200
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REBUILD_TARGET = Target("value", ">=", 200_000)


class Cluster:
    """Generates the events of a busy cluster, deploy after deploy."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.now = T0
        self.apps: list[App] = []
        self.current: dict[str, Release] = {}
        self.jobs: dict[str, list[Job]] = {}
        self.provider = Provider(self.uuid(), "postgres", "http://pg/databases", T0, T0)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def tick(self) -> datetime:
        self.now += timedelta(microseconds=self.rng.randint(50, 5000))
        return self.now

    def events(self) -> Iterator[Event]:
        yield ProviderCreated(self.provider)
        for n in range(APPS):
            app = App(self.uuid(), f"app-{n}", self.tick(), self.now)
            self.apps.append(app)
            yield AppCreated(app)
            yield RouteCreated(
                Route(
                    "http",
                    self.uuid(),
                    f"controller/apps/{app.id}",
                    f"app-{n}-web",
                    self.now,
                    self.now,
                    domain=f"app-{n}.test",
                )
            )
        while True:
            yield from self.deploy(self.rng.choice(self.apps))

    def deploy(self, app: App) -> Iterator[Event]:
        at = self.tick()
        artifact = Artifact(self.uuid(), "docker", f"https://registry.test/{app.name}:{at}", at)
        processes = {"web": {"cmd": ["bin/web"], "ports": [{"port": 8080, "proto": "tcp"}]}}
        env = {"PORT": "8080", "LOG_LEVEL": "info", "VERSION": str(at.timestamp())}
        release = Release(self.uuid(), at, artifact.id, env=env, processes=processes, app_id=app.id)
        old = self.current.get(app.id)
        deployment = Deployment(
            self.uuid(),
            app.id,
            release.id,
            "all-at-once",
            DeploymentStatus.PENDING,
            {"web": 3},
            30,
            at,
            old.id if old else None,
        )
        yield ArtifactCreated(artifact)
        yield ReleaseCreated(release)
        yield DeploymentCreated(deployment)
        yield self.progress(deployment, DeploymentStatus.RUNNING)
        yield FormationScaled(app.id, release.id, {"web": 3})
        new_jobs = []
        for state in (JobState.STARTING, JobState.UP):
            for k in range(3):
                if state == JobState.STARTING:
                    job_id = f"host{k}-{self.uuid()}"
                    new_jobs.append(
                        Job(job_id, app.id, release.id, state, self.tick(), self.now, type="web")
                    )
                job = attrs.evolve(new_jobs[k], state=state, updated_at=self.tick())
                yield JobStateChanged(job)
                if state == JobState.UP:
                    yield self.progress(deployment, DeploymentStatus.RUNNING, "web", "up")
        if old is not None:
            yield FormationScaled(app.id, old.id, {"web": 0}, {"web": 3})
            for job in self.jobs.get(app.id, []):
                yield JobStateChanged(
                    attrs.evolve(job, state=JobState.DOWN, updated_at=self.tick())
                )
        self.jobs[app.id] = new_jobs
        self.current[app.id] = release
        yield AppReleaseSet(app.id, release, old)
        yield self.progress(deployment, DeploymentStatus.COMPLETE)
        if self.rng.random() < 0.1:
            resource = Resource(
                self.uuid(),
                self.provider.id,
                self.tick(),
                "/db",
                {"DATABASE_URL": "postgres://db"},
                (app.id,),
            )
            yield ResourceCreated(resource, app.id)

    def progress(
        self, d: Deployment, status: DeploymentStatus, kind: str = "", state: str = ""
    ) -> Event:
        self.tick()
        return DeploymentStatusChanged(d.app_id, d.id, d.new_release_id, status, kind, state)


def synthetic_log(n: int) -> Iterator[RecordedEvent]:
    """The first `n` events of a Cluster, as the log records them."""
    cluster = Cluster()
    for event_id, event in enumerate(cluster.events(), 1):
        if event_id > n:
            return
        yield RecordedEvent.of(encode(event), event_id, cluster.now)


def write_archive(path: Path, n: int) -> float:
    """Write the synthetic log as a backup; returns the seconds it took (not a figure)."""
    began = time.perf_counter()
    writer = ArchiveWriter(datetime.now(UTC))
    last = 0
    with path.open("wb") as f:
        for record in synthetic_log(n):
            f.write(writer.add(record))
            last = record.id
        f.write(writer.finish(last))
    return time.perf_counter() - began


@attrs.frozen
class Measured:
    seconds: float
    detail: dict[str, float]


async def measure(what: str, postmaster: int | None, work: Any) -> Measured:
    usage, busy, began = Usage.now(postmaster), machine_cpu(), time.perf_counter()
    await work()
    seconds = time.perf_counter() - began
    detail = Usage.now(postmaster).percent_since(usage, seconds)
    # What the machine was busy with besides this suite (other users of a shared box).
    ours = sum(detail.values())
    detail["other processes CPU %"] = 100 * (machine_cpu() - busy) / seconds - ours
    print(f"  {what:<34} {seconds:8.2f} s", file=sys.stderr, flush=True)
    return Measured(seconds, detail)


async def backup_to(store: PostgresEventStore, path: Path) -> int:
    size = 0
    with path.open("wb") as f:
        async for chunk in archive_chunks(store, await store.last_id(), datetime.now(UTC)):
            f.write(chunk)
            size += len(chunk)
    return size


async def fold(source: LogReader, events: int) -> None:
    rebuilt = await rebuild(source)
    assert rebuilt.last_event_id == events, rebuilt.last_event_id


async def parse_only(source: LogReader, events: int) -> None:
    """The floor under a rebuild: read every event and parse its payload; fold nothing."""
    loads, count = orjson.loads, 0
    with collector_paused():  # as rebuild: the parsed payloads are not kept, though
        async for record in source.read():
            loads(record.data)
            count += 1
    assert count == events, count


async def _measure(dsn: str, plan: Plan, postmaster: int | None, folder: Path) -> list[Row]:
    archive, again = folder / "log.tar", folder / "again.tar"
    made = write_archive(archive, plan.events)
    size = archive.stat().st_size
    print(
        f"  generated {plan.events:,} events ({size / 1e6:,.0f} MB) in {made:.1f} s",
        file=sys.stderr,
    )
    manifest = verify_archive(archive)
    quiet = Progress("", enabled=False)
    loaded = await measure(
        "restore: COPY",
        postmaster,
        lambda: load(dsn, archive, manifest, force=False, progress=quiet),
    )
    conn = await asyncpg.connect(dsn)
    await conn.execute("VACUUM (ANALYZE) events")  # hint bits now, not in a measured read
    await conn.close()
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=2)
    # key -> (what the progress line says, whose CPU is PostgreSQL's, the work)
    works: dict[str, tuple[str, int | None, Callable[[], Awaitable[object]]]] = {
        "verify": ("verify archive", None, lambda: asyncio.to_thread(verify_archive, archive)),
        "backup": ("backup from the database", postmaster, lambda: backup_to(store, again)),
        "check": ("restore: read-back check", postmaster, lambda: check_database(store, manifest)),
        "file": (
            "rebuild in memory from the file",
            None,
            lambda: fold(ArchiveSource(archive), plan.events),
        ),
        "db": ("rebuild in memory from the database", postmaster, lambda: fold(store, plan.events)),
        "file floor": (
            "read + parse payloads, from the file",
            None,
            lambda: parse_only(ArchiveSource(archive), plan.events),
        ),
        "db floor": (
            "read + parse payloads, from the db",
            postmaster,
            lambda: parse_only(store, plan.events),
        ),
    }
    runs: dict[str, list[Measured]] = {key: [] for key in works}
    try:
        for _ in range(plan.runs):
            for key, (what, server_pid, work) in works.items():
                runs[key].append(await measure(what, server_pid, work))
    finally:
        await store.close()
    n, mb = plan.events, again.stat().st_size / 1e6

    def rate(key: str, unit: float, figure: str, target: Target | None = None) -> Row:
        measured = runs[key]
        values = tuple(unit / m.seconds for m in measured)
        detail = {k: sum(m.detail[k] for m in measured) / len(measured) for k in measured[0].detail}
        return Row(
            figure, "MB/s" if unit == mb else "events/s", values, target=target, detail=detail
        )

    return [
        rate("backup", mb, f"backup (GET /backup writer), {n:,} events"),
        Row(f"restore: COPY {n:,} events", "events/s", (n / loaded.seconds,), detail=loaded.detail),
        rate("verify", n, "restore: archive check (sha256, ids)"),
        rate("check", n, "restore: read-back check from the database"),
        rate("file", n, "rebuild in memory from a backup file", REBUILD_TARGET),
        rate("db", n, "rebuild in memory from the database", REBUILD_TARGET),
        # What reading the log and parsing each payload cost alone, without any fold: the
        # ceiling of a rebuild on this machine, for the target above.
        rate("file floor", n, "floor: read the backup file and parse each payload"),
        rate("db floor", n, "floor: read the database and parse each payload"),
    ]


async def _suite(admin_dsn: str, plan: Plan, postmaster: int | None) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="evenflow-bench-replay-") as folder:
        async with scratch_database(admin_dsn) as dsn:
            return await _measure(dsn, plan, postmaster, Path(folder))


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    plan = QUICK if quick else FULL
    with server() as (admin_dsn, where, postmaster):
        rows = asyncio.run(_suite(admin_dsn, plan, postmaster))
    return rows, {"database": where, "plan": attrs.asdict(plan), "apps": APPS}
