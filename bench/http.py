"""The HTTP suite: Evenflow as a service under wrk, against aiohttp's own ceiling.

Everything runs as separate processes on this machine: PostgreSQL (fsync on), the service
(`python -m controller serve`, SCHEDULER=off), the ceiling app (`python -m bench.ceiling`)
and the load generator (wrk). Every scenario runs once per round, round after round, so a
busy patch of the machine hits all figures alike; each figure is the median of its runs,
and its ratio compares medians measured in this same invocation. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from bench import scratch_database, server, service
from bench.report import Row, Target
from bench.service import AUTH, ceiling, evenflow, need_wrk, wrk

Runs = list[dict[str, float]]


@attrs.frozen
class Plan:
    seconds: float  # per wrk run
    runs: int  # rounds
    apps: int = 100  # seeded apps (GET /apps lists them all: ~25 KB)


FULL = Plan(seconds=4.0, runs=3)
QUICK = Plan(seconds=1.0, runs=1)


# -- seeding -----------------------------------------------------------------------------


async def seed(url: str, apps: int) -> list[tuple[str, str, str]]:
    """`apps` apps, each with a release (its current one) and a formation: (app, release,
    artifact) ids."""
    async with aiohttp.ClientSession(url, headers={"Authorization": AUTH}) as session:

        async def post(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with session.request(method, path, json=body) as response:
                assert response.status == 200, await response.text()
                return dict(await response.json())

        docker = {"type": "docker", "uri": "https://registry.example.com/x"}
        artifact = (await post("POST", "/artifacts", docker))["id"]
        seeded = []
        for n in range(apps):
            app = (await post("POST", "/apps", {"name": f"seed-{n}", "meta": {"n": str(n)}}))["id"]
            processes = {"web": {"cmd": ["bin/web"], "ports": [{"port": 8080, "proto": "tcp"}]}}
            release = {"artifact": artifact, "app_id": app, "env": {"PORT": "8080"},
                       "processes": processes}  # fmt: skip
            release_id = (await post("POST", "/releases", release))["id"]
            await post("PUT", f"/apps/{app}/release", {"id": release_id})
            await post("PUT", f"/apps/{app}/formations/{release_id}", {"processes": {"web": 1}})
            seeded.append((app, release_id, artifact))
        return seeded


# -- cross-worker visibility ---------------------------------------------------------------


async def visibility(url: str, connections: int = 16, writes: int = 20) -> dict[str, float]:
    """Writes through one connection, then polls the new app through `connections` others
    (SO_REUSEPORT spreads them over the workers): ms until every one of them sees it."""
    lags: list[float] = []
    connector = aiohttp.TCPConnector(limit=connections + 1, force_close=False)
    async with aiohttp.ClientSession(
        url, headers={"Authorization": AUTH}, connector=connector
    ) as s:
        readers = [aiohttp.ClientSession(url, headers={"Authorization": AUTH},
                                         connector=aiohttp.TCPConnector(limit=1))
                   for _ in range(connections)]  # fmt: skip
        try:
            for reader in readers:  # open each reader's connection
                async with reader.get("/ping") as response:
                    await response.read()
            for n in range(writes):
                name = f"visible-{uuid.uuid4().hex[:12]}-{n}"
                async with s.post("/apps", json={"name": name}) as response:
                    assert response.status == 200
                acknowledged = time.perf_counter()
                seen = await asyncio.gather(*(_seen(r, name) for r in readers))
                lags.append(max(seen) - acknowledged)
        finally:
            for reader in readers:
                await reader.close()
    lags.sort()
    return {"p50 ms": 1000 * lags[len(lags) // 2], "max ms": 1000 * lags[-1]}


async def _seen(reader: aiohttp.ClientSession, app: str) -> float:
    """When `reader` first finds the app (perf_counter)."""
    while True:
        async with reader.get(f"/apps/{app}") as response:
            await response.read()
            if response.status == 200:
                return time.perf_counter()
        await asyncio.sleep(0.001)


# -- the suite -----------------------------------------------------------------------------


@contextlib.contextmanager
def database(admin_dsn: str) -> Iterator[str]:
    """A fresh database for one service, dropped afterwards."""
    manager = scratch_database(admin_dsn)
    loop = asyncio.new_event_loop()
    try:
        dsn = loop.run_until_complete(manager.__aenter__())
        try:
            yield dsn
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


def median(runs: Runs, key: str) -> float:
    return statistics.median(r[key] for r in runs)


def row(
    figure: str,
    runs: Runs,
    *,
    key: str = "rps",
    unit: str = "req/s",
    baseline: tuple[str, Runs] | None = None,
    target: Target | None = None,
    cpu_ratio: str = "ceiling/our CPU per req",
) -> Row:
    """A figure from its runs; the details are medians over the runs too."""
    detail = {k: median(runs, k) for k in runs[0] if k != key}
    name, value = (None, None) if baseline is None else (baseline[0], median(baseline[1], key))
    if baseline is not None and "server CPU us/req" in detail:
        # What the ratio would be if only CPU mattered: steadier on a busy machine.
        detail[cpu_ratio] = median(baseline[1], "server CPU us/req") / detail["server CPU us/req"]
    return Row(figure, unit, tuple(r[key] for r in runs), name, value, target, detail)


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    need_wrk()
    plan = QUICK if quick else FULL
    with server() as (admin_dsn, where, _pid), tempfile.TemporaryDirectory() as folder:
        rows = _measure(admin_dsn, plan, Path(folder))
    return rows, {"database": where, "plan": attrs.asdict(plan),
                  "load_generator": "wrk, 2 threads, in its own process"}  # fmt: skip


def _measure(admin_dsn: str, plan: Plan, folder: Path) -> list[Row]:
    t = plan.seconds
    with contextlib.ExitStack() as stack:
        top = stack.enter_context(ceiling())
        reads_dsn = stack.enter_context(database(admin_dsn))
        writes_dsn = stack.enter_context(database(admin_dsn))
        one = stack.enter_context(evenflow(reads_dsn, workers=1))
        seeded = asyncio.run(seed(one.url, plan.apps))
        ids = folder / "ids.txt"
        ids.write_text("".join(f"{a} {r} {f}\n" for a, r, f in seeded))
        two = stack.enter_context(evenflow(reads_dsn, workers=2))
        writer = stack.enter_context(evenflow(writes_dsn, workers=1))
        # As shipped: the access log at INFO, in each format, into a file.
        logged = {}
        for form in ("text", "json"):
            shipped = {"LOG_LEVEL": "INFO", "LOG_FORMAT": form}
            log = folder / f"service-{form}.log"
            logged[form] = (
                stack.enter_context(evenflow(reads_dsn, env=shipped, log=log)),
                stack.enter_context(evenflow(stack.enter_context(database(admin_dsn)),
                                             env=shipped, log=log)),
            )  # fmt: skip
        app = seeded[0][0]
        prefix = uuid.uuid4().hex[:6]

        def unique() -> dict[str, str]:
            return {"BENCH_PREFIX": f"{prefix}{time.monotonic_ns()}"}

        def post(target: service.Target) -> dict[str, float]:
            return wrk(target, "/apps", connections=64, seconds=t, script="create_apps.lua",
                       env=unique())  # fmt: skip

        scenarios: dict[str, Callable[[], dict[str, float]]] = {
            "ceiling GET": lambda: wrk(top, "/apps/x", connections=64, seconds=t),
            "ceiling POST": lambda: wrk(top, "/apps", connections=64, seconds=t,
                                        script="create_apps.lua", env=unique()),
            "POST x64": lambda: wrk(writer, "/apps", connections=64, seconds=t,
                                    script="create_apps.lua", env=unique()),
            "POST x1": lambda: wrk(writer, "/apps", connections=1, seconds=t,
                                   script="create_apps.lua", env=unique()),
            "GET id": lambda: wrk(one, f"/apps/{app}", connections=64, seconds=t),
            "GET apps": lambda: wrk(one, "/apps", connections=64, seconds=t),
            "GET events": lambda: wrk(one, "/events?count=100", connections=64, seconds=t),
            "mixed": lambda: wrk(one, "/", connections=64, seconds=t, script="mixed.lua",
                                 env={"BENCH_IDS": str(ids)}),
            "GET id 2 workers": lambda: wrk(two, f"/apps/{app}", connections=64, seconds=t),
            "visibility": lambda: asyncio.run(visibility(two.url)),
        }  # fmt: skip
        for form, (reads, writes) in logged.items():
            scenarios[f"GET id, log {form}"] = functools.partial(
                wrk, reads, f"/apps/{app}", connections=64, seconds=t
            )
            scenarios[f"POST x64, log {form}"] = functools.partial(post, writes)  # fmt: skip
        results: dict[str, Runs] = {name: [] for name in scenarios}
        for round_ in range(plan.runs):
            for name, measure in scenarios.items():
                results[name].append(measure())
                got = results[name][-1]
                shown = f"{got['rps']:>9,.0f} req/s" if "rps" in got else f"{got['max ms']:.1f} ms"
                print(f"  run {round_ + 1}/{plan.runs} {name:<18} {shown}", file=sys.stderr,
                      flush=True)  # fmt: skip
    return _rows(results)


def _rows(r: dict[str, Runs]) -> list[Row]:
    get_ceiling = ("ceiling GET", r["ceiling GET"])
    post_ceiling = ("ceiling POST", r["ceiling POST"])
    return [
        row("HTTP ceiling GET x64 (aiohttp, fixed body)", r["ceiling GET"]),
        row("HTTP ceiling POST x64 (aiohttp, fixed body)", r["ceiling POST"]),
        row("POST /apps x64 (durable, unique names)", r["POST x64"], baseline=post_ceiling,
            target=Target("ratio", ">=", 0.30)),
        row("POST /apps x1, p99", r["POST x1"], key="p99 ms", unit="ms",
            target=Target("value", "<=", 5.0)),
        row("GET /apps/:id x64", r["GET id"], baseline=get_ceiling,
            target=Target("ratio", ">=", 0.70)),
        row("GET /apps x64 (100 apps, ~25 KB)", r["GET apps"], baseline=get_ceiling,
            target=Target("ratio", ">=", 0.30)),
        row("GET /events?count=100 x64", r["GET events"], baseline=get_ceiling,
            target=Target("ratio", ">=", 0.30)),
        row("mixed 90% reads / 10% writes x64", r["mixed"], baseline=get_ceiling),
        row("GET /apps/:id x64, --workers 2", r["GET id 2 workers"],
            baseline=("--workers 1", r["GET id"]), target=Target("ratio", ">=", 1.6)),
        row("write visible on every worker, max", r["visibility"], key="max ms", unit="ms",
            target=Target("value", "<=", 100.0)),
        *_logged(r),
    ]  # fmt: skip


def _logged(r: dict[str, Runs]) -> list[Row]:
    """The service as shipped (the access log at INFO, into a file) against the quiet one
    (LOG_LEVEL=WARNING), in each log format."""
    rows = []
    for form in ("text", "json"):
        rows += [
            row(f"GET /apps/:id x64, access log ({form})", r[f"GET id, log {form}"],
                baseline=("quiet", r["GET id"]), target=Target("ratio", ">=", 0.95),
                cpu_ratio="quiet/logged CPU per req"),
            row(f"POST /apps x64, access log ({form})", r[f"POST x64, log {form}"],
                baseline=("quiet", r["POST x64"]), target=Target("ratio", ">=", 0.95),
                cpu_ratio="quiet/logged CPU per req"),
        ]  # fmt: skip
    return rows
