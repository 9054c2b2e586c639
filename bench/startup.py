"""The start-up suite: a service starting on a big log, and what it then holds in memory.

The log is 100,000 apps of 10 events each (1M events; `--quick`: 10,000 apps): each app
created with its default route, an artifact, a release made current, a formation of two
web jobs, and both jobs reported starting, then up. It is loaded by COPY (loading is not
measured), then `python -m controller serve --workers 1` is started and timed until
`/.well-known/status` answers, twice per round: cold (no snapshot: the whole log read from
PostgreSQL and folded), then from the read-model snapshot its shutdown wrote (see
projections/snapshot.py; the shutdown's time is a detail). The service's resident memory is
read from /proc once it is ready, and again after one `GET /apps` (which encodes every app
once: the encoded-JSON cache is part of the cost).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs

from bench import scratch_database, server
from bench.report import Row, Target
from bench.service import AUTH, evenflow, rss_mb
from domain.codec import encode
from domain.events import (
    AppCreated,
    AppReleaseSet,
    ArtifactCreated,
    Event,
    FormationScaled,
    JobStateChanged,
    ReleaseCreated,
    RouteCreated,
)
from domain.objects import App, Artifact, Job, Release, Route
from domain.states import JobState
from eventstore.postgres import PostgresEventStore

EVENT_COLUMNS = ["event_id", "type", "object_type", "object_id", "app_id", "op", "unique_id",
                 "data", "created_at"]  # fmt: skip
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@attrs.frozen
class Plan:
    apps: int
    runs: int


FULL = Plan(apps=100_000, runs=2)
QUICK = Plan(apps=10_000, runs=1)

# The template app's ids, replaced in the encoded events by each app's own.
IDS = {name: str(uuid.UUID(int=n + 1, version=4)) for n, name in enumerate(
    ("app", "route", "artifact", "release", "job0", "job1"))}  # fmt: skip
NAME = "template-app-name"


def template() -> list[Event]:
    """One app's ten events, with the template ids."""
    at = T0
    app = App(IDS["app"], NAME, at, at, meta={"owner": "bench"})
    route = Route("http", IDS["route"], f"controller/apps/{IDS['app']}", f"{NAME}-web", at, at,
                  domain=f"{NAME}.example.com")  # fmt: skip
    artifact = Artifact(IDS["artifact"], "docker", f"https://registry.example.com/{NAME}:1", at)
    processes = {"web": {"cmd": ["bin/web"], "ports": [{"port": 8080, "proto": "tcp"}]}}
    release = Release(IDS["release"], at, artifact.id, env={"PORT": "8080"},
                      processes=processes, app_id=app.id)  # fmt: skip
    jobs = [Job(f"host-{IDS[f'job{k}']}", app.id, release.id, JobState.STARTING, at, at, type="web")
            for k in range(2)]  # fmt: skip
    later = at + timedelta(seconds=2)
    return [
        AppCreated(app),
        RouteCreated(route),
        ArtifactCreated(artifact),
        ReleaseCreated(release),
        AppReleaseSet(app.id, release),
        FormationScaled(app.id, release.id, {"web": 2}),
        *(JobStateChanged(job) for job in jobs),
        *(JobStateChanged(attrs.evolve(job, state=JobState.UP, updated_at=later)) for job in jobs),
    ]


def records(apps: int) -> Iterator[tuple[Any, ...]]:
    """Every app's events as rows of `events`: the template's, with the app's own ids (a
    byte substitution of the encoded template is much cheaper than encoding 1M events)."""
    encoded = [encode(event) for event in template()]
    event_id = 0
    for n in range(apps):
        swap = {old.encode(): str(uuid.UUID(int=(n << 8) + k + 1000, version=4)).encode()
                for k, old in enumerate(IDS.values())}  # fmt: skip
        swap[NAME.encode()] = f"app-{n:06d}".encode()
        created_at = T0 + timedelta(milliseconds=n)
        for e in encoded:
            data, object_id, app_id, unique_id = e.data, e.object_id, e.app_id, e.unique_id
            for old, new in swap.items():
                data = data.replace(old, new)
                object_id = object_id.replace(old.decode(), new.decode())
                if unique_id is not None:
                    unique_id = unique_id.replace(old.decode(), new.decode())
            app_id = swap[IDS["app"].encode()].decode() if app_id else None
            event_id += 1
            yield (event_id, e.type, e.object_type, object_id, app_id, e.op, unique_id, data,
                   created_at)  # fmt: skip


async def load(dsn: str, apps: int) -> float:
    """Create the schema and COPY the log in; returns the seconds it took (not a figure)."""
    await (await PostgresEventStore.open(dsn, min_size=1, max_size=1)).close()  # migrate
    began = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.set_type_codec("json", schema="pg_catalog", encoder=bytes, decoder=bytes,
                                  format="binary")  # fmt: skip
        await conn.copy_records_to_table("events", records=records(apps), columns=EVENT_COLUMNS)
        await conn.execute("VACUUM (ANALYZE) events")  # hint bits now, not in a measured read
    finally:
        await conn.close()
    return time.perf_counter() - began


async def list_apps(url: str) -> int:
    async with (
        aiohttp.ClientSession(headers={"Authorization": AUTH}) as session,
        session.get(f"{url}/apps") as response,
    ):
        assert response.status == 200
        return len(await response.read())


def start(dsn: str, data_dir: Path) -> dict[str, float]:
    """Start the service on the log, measure it ready, list the apps, stop it."""
    env = {"EVENFLOW_DATA_DIR": str(data_dir), "EVENFLOW_SNAPSHOT_AFTER": "1"}
    with evenflow(dsn, workers=1, env=env) as service:
        ready_rss = rss_mb(service.proc.pid)
        size = asyncio.run(list_apps(service.url))
        measured = {"ready s": service.ready_seconds, "RSS MB": ready_rss,
                    "RSS MB after GET /apps": rss_mb(service.proc.pid),
                    "GET /apps MB": size / 1e6}  # fmt: skip
        stopping = time.perf_counter()
    measured["shutdown s (writes the snapshot)"] = time.perf_counter() - stopping
    return measured


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    plan = QUICK if quick else FULL
    events = plan.apps * len(template())
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    data_dir = Path(tempfile.mkdtemp(prefix="evenflow-bench-data-"))
    with server() as (admin_dsn, where, _pid):
        loop = asyncio.new_event_loop()
        manager = scratch_database(admin_dsn)
        dsn = loop.run_until_complete(manager.__aenter__())
        try:
            loaded = loop.run_until_complete(load(dsn, plan.apps))
            print(f"  loaded {events:,} events in {loaded:.1f} s", file=sys.stderr, flush=True)
            for n in range(plan.runs):
                shutil.rmtree(data_dir / "snapshots", ignore_errors=True)
                for kind, runs in (("cold", cold), ("from a snapshot", warm)):
                    runs.append(got := start(dsn, data_dir))
                    print(f"  run {n + 1}/{plan.runs} {kind}: ready in {got['ready s']:.2f} s,"
                          f" {got['RSS MB']:,.0f} MB", file=sys.stderr, flush=True)  # fmt: skip
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
            loop.close()
            shutil.rmtree(data_dir, ignore_errors=True)
    label = f"{events:,} events, {plan.apps:,} apps"
    big = plan.apps >= 100_000
    return [
        _row(f"start-up, cold (no snapshot), {label}", cold, "ready s", "s", None, events),
        _row(f"start-up from a snapshot, {label}", warm, "ready s", "s",
             Target("value", "<=", 5.0), events),
        _row(f"resident memory, cold start, {label}", cold, "RSS MB", "MB",
             Target("value", "<=", 600.0) if big else None),
        _row(f"resident memory, start from a snapshot, {label}", warm, "RSS MB", "MB"),
    ], {"database": where, "plan": attrs.asdict(plan), "events": events}  # fmt: skip


def _row(
    figure: str,
    runs: list[dict[str, float]],
    key: str,
    unit: str,
    target: Target | None = None,
    events: int | None = None,
) -> Row:
    detail = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0] if k != key}
    if events is not None:
        detail["events/s to ready"] = events / sorted(r[key] for r in runs)[len(runs) // 2]
    return Row(figure, unit, tuple(r[key] for r in runs), target=target, detail=detail)
