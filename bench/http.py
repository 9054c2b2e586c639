"""The HTTP suite: Evenflow as a service under wrk, against aiohttp's own ceiling.

Everything runs as separate processes on this machine: PostgreSQL (fsync on), the service
(`python -m controller serve`), the ceiling app (`python -m bench.ceiling`) and the load
generator (wrk). Each figure is the median of repeated runs; ratios compare runs made in
this same invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import scratch_database, server
from bench.report import Row, Target

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).parent / "lua"
KEY = "bench-key"
AUTH = aiohttp.encode_basic_auth("", KEY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, path: str = "/.well-known/status", timeout: float = 120) -> float:
    """Poll until `url + path` answers 200; returns the seconds it took."""
    started = time.monotonic()

    async def poll() -> None:
        async with aiohttp.ClientSession(headers={"Authorization": AUTH}) as session:
            while time.monotonic() - started < timeout:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url + path) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.01)
            raise RuntimeError(f"{url} did not become ready in {timeout} s")

    asyncio.run(poll())
    return time.monotonic() - started


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=ROOT, env=os.environ | (env or {}))
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def evenflow(dsn: str, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """The service on a free port: (url, process, seconds until ready)."""
    port = free_port()
    args = [sys.executable, "-m", "controller", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        args += ["--workers", str(workers)]
    settings = {"DATABASE_URL": dsn, "AUTH_KEY": KEY, "LOG_LEVEL": "WARNING", "SCHEDULER": "off"}
    with process(args, settings | (env or {})) as proc:
        url = f"http://127.0.0.1:{port}"
        yield url, proc, wait_ready(url)


@contextlib.contextmanager
def ceiling() -> Iterator[str]:
    port = free_port()
    with process([sys.executable, "-m", "bench.ceiling", "--port", str(port)]):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, "/apps")
        yield url


def wrk(url: str, *, connections: int, seconds: float, script: str = "request.lua",
        accept: str = "application/json", prefix: str = "") -> dict[str, float]:
    """One wrk run; returns requests/s, latency percentiles (ms) and error counts."""
    env = os.environ | {"BENCH_AUTH": AUTH, "BENCH_ACCEPT": accept, "BENCH_PREFIX": prefix}
    threads = min(2, connections)
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s",
         "-s", str(LUA / script), url],
        env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout} {result.stderr}")
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    errors = summary["errors"] + summary["status_errors"]
    if errors:
        raise RuntimeError(f"{errors} failed requests against {url}: {result.stdout}")
    return {
        "rps": summary["requests"] / (summary["duration_us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
    }


def repeat(runs: int, measure: Any) -> list[dict[str, float]]:
    return [measure() for _ in range(runs)]


def row(figure: str, unit: str, runs: list[dict[str, float]], key: str = "rps",
        baseline: tuple[str, list[dict[str, float]]] | None = None,
        target: Target | None = None) -> Row:
    base_name, base_value = None, None
    if baseline is not None:
        base_name = baseline[0]
        base_value = sorted(r[key] for r in baseline[1])[len(baseline[1]) // 2]
    detail = {
        "p50 ms": sorted(r["p50_ms"] for r in runs)[len(runs) // 2],
        "p99 ms": sorted(r["p99_ms"] for r in runs)[len(runs) // 2],
    }
    return Row(figure, unit, tuple(r[key] for r in runs), base_name, base_value, target, detail)


async def seed(url: str, apps: int) -> list[str]:
    """Create `apps` apps; returns their ids."""
    async with aiohttp.ClientSession(headers={"Authorization": AUTH}) as session:
        ids = []
        for n in range(apps):
            async with session.post(f"{url}/apps", json={"name": f"seed-{n}", "meta": {"n": str(n)}}) as r:
                ids.append((await r.json())["id"])
        return ids


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the HTTP suite: apt-get install wrk")
    seconds = 2.0 if quick else 5.0
    runs = 1 if quick else 3
    rows: list[Row] = []
    with server() as (admin_dsn, description, _pid), ceiling() as top:
        ceiling_get = repeat(runs, lambda: wrk(f"{top}/apps/x", connections=64, seconds=seconds))
        ceiling_post = repeat(runs, lambda: wrk(top, connections=64, seconds=seconds, script="create_apps.lua"))
        get_ceiling = ("aiohttp ceiling GET", ceiling_get)
        post_ceiling = ("aiohttp ceiling POST", ceiling_post)
        with database(admin_dsn) as dsn, evenflow(dsn) as (url, _proc, _ready):
            ids = asyncio.run(seed(url, 100))
            prefix = uuid.uuid4().hex[:6]
            posts = repeat(runs, lambda: wrk(url, connections=64, seconds=seconds,
                                             script="create_apps.lua", prefix=f"{prefix}{time.monotonic_ns()}"))
            rows.append(row("POST /apps x64 conns", "req/s", posts, baseline=post_ceiling,
                            target=Target("ratio", ">=", 0.30)))
            single = repeat(runs, lambda: wrk(url, connections=1, seconds=seconds,
                                              script="create_apps.lua", prefix=f"s{prefix}{time.monotonic_ns()}"))
            rows.append(row("POST /apps x1 conn, p99", "ms", single, key="p99_ms",
                            target=Target("value", "<=", 5.0)))
            gets = repeat(runs, lambda: wrk(f"{url}/apps/{ids[0]}", connections=64, seconds=seconds))
            rows.append(row("GET /apps/:id x64 conns", "req/s", gets, baseline=get_ceiling,
                            target=Target("ratio", ">=", 0.70)))
        with database(admin_dsn) as dsn, evenflow(dsn) as (url, _proc, _ready):
            asyncio.run(seed(url, 100))
            lists = repeat(runs, lambda: wrk(f"{url}/apps", connections=64, seconds=seconds))
            rows.append(row("GET /apps (100 apps) x64", "req/s", lists, baseline=get_ceiling,
                            target=Target("ratio", ">=", 0.30)))
            events = repeat(runs, lambda: wrk(f"{url}/events?count=100", connections=64, seconds=seconds))
            rows.append(row("GET /events?count=100 x64", "req/s", events, baseline=get_ceiling,
                            target=Target("ratio", ">=", 0.30)))
    return rows, {"server": description, "seconds_per_run": seconds, "runs": runs}


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
