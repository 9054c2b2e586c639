"""Evenflow's benchmarks (`python -m bench`), and the harness every suite shares.

A suite gets a durable PostgreSQL (`server`, `scratch_database`), drives operations in a
closed loop (`closed_loop`), explains its rates with CPU accounting (`Usage`), and hands
its rows to `bench.report`. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs

from localpg import LocalPG

#: Environment variable naming an existing server to use instead of a throwaway one.
DATABASE_URL_VARIABLE = "BENCH_DATABASE_URL"

Op = Callable[[], Awaitable[int]]  # one operation; returns how many items (events) it did


async def closed_loop(ops: Sequence[Op], seconds: float) -> tuple[int, int, list[float]]:
    """Run each op back to back in its own task until `seconds` pass; in-flight ops finish.

    Closed loop: a worker starts its next operation only when its last one returned, so
    the concurrency is exactly len(ops). Returns (operations, items, latencies in seconds).
    """
    latencies: list[float] = []
    items = 0
    stop = time.perf_counter() + seconds

    async def worker(op: Op) -> None:
        nonlocal items
        while (began := time.perf_counter()) < stop:
            done = await op()  # not `items += await op()`: that reads `items` before awaiting
            items += done
            latencies.append(time.perf_counter() - began)

    async with asyncio.TaskGroup() as tasks:
        for op in ops:
            tasks.create_task(worker(op))
    return len(latencies), items, latencies


@attrs.frozen
class Usage:
    """CPU seconds used so far by this process, and by a local server's process tree."""

    client: float
    server: float | None  # None when the server is not on this machine, or not ours

    @classmethod
    def now(cls, server_pid: int | None) -> Usage:
        server = None if server_pid is None else process_tree_cpu(server_pid)
        return cls(time.process_time(), server)

    def percent_since(self, start: Usage, seconds: float) -> dict[str, float]:
        """Busy cores in between, in percent: 200 is all of a 2-core machine."""
        used = {"client CPU %": self.client - start.client}
        if self.server is not None and start.server is not None:
            used["server CPU %"] = self.server - start.server
        return {key: 100 * cpu / seconds for key, cpu in used.items()}


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of process `pid` and its children (for Postgres: every backend)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):  # gone meanwhile
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
            if pid in (int(stat.parent.name), int(fields[1])):
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server() -> Iterator[tuple[str, str, int | None]]:
    """(admin DSN, description, postmaster pid) of BENCH_DATABASE_URL or a throwaway cluster."""
    if url := os.environ.get(DATABASE_URL_VARIABLE):
        yield url, DATABASE_URL_VARIABLE, None
        return
    root = Path(tempfile.mkdtemp(prefix="evenflow-bench-"))
    try:
        with LocalPG(root) as pg:  # fast=False: fsync and synchronous_commit stay on
            yield pg.dsn(), "LocalPG (throwaway cluster)", pg.pid
    finally:
        shutil.rmtree(root, ignore_errors=True)


_scratch_count = 0


@contextlib.asynccontextmanager
async def scratch_database(admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database on the server of `admin_dsn`, dropped afterwards; yields its DSN."""
    global _scratch_count
    _scratch_count += 1  # several may be open at once (the HTTP suite's services)
    name = f"evenflow_bench_{os.getpid()}_{_scratch_count}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield urlunsplit(urlsplit(admin_dsn)._replace(path="/" + name))
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()
