"""The SSE suite: event-stream latency from commit to receipt, and delivery at saturation.

Four processes: PostgreSQL (fsync on), the service (`python -m controller serve`, one
process), a subscriber process holding every stream (raw sockets, so that the client side
costs little), and this one, which appends to the log at a fixed rate. Latency is measured
per event and subscriber, from the moment the writer's append is acknowledged (the commit
has completed: the event is durable and visible) to the moment the subscriber reads its
frame. The event's `created_at` is not used: it is taken under the append lock, before the
commit's WAL flush, whose own latency would be counted. Each subscriber must get every
event of the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from bench import process_tree_cpu, scratch_database, server
from bench.report import Row, Target
from bench.service import evenflow
from bench.store import release_event
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent

ROOT = Path(__file__).resolve().parents[1]


@attrs.frozen
class Scenario:
    name: str
    subscribers: int
    rate: float | None  # events/s; None: as fast as the writer can (saturation)
    target_ms: float | None = None


@attrs.frozen
class Plan:
    seconds: float
    warmup: float
    runs: int


FULL = Plan(seconds=10.0, warmup=1.0, runs=2)
QUICK = Plan(seconds=1.5, warmup=0.3, runs=1)
SCENARIOS = (
    Scenario("200 subscribers @ 200 events/s", 200, 200, 15.0),
    Scenario("1,000 subscribers @ 50 events/s", 1000, 50, 50.0),
    Scenario("saturation, 200 subscribers", 200, None),
)


# -- the writer -------------------------------------------------------------------------------


async def write(
    store: PostgresEventStore, rate: float | None, seconds: float, acks: dict[int, float]
) -> int:
    """Append for `seconds`: one event every 1/rate s (open loop), or as fast as 4 appenders
    of 50 events go (closed loop). Each event's id -> the time its append was acknowledged
    (its commit, as the writer sees it) goes into `acks`; returns how many events."""
    rng = random.Random(1)
    stop = time.perf_counter() + seconds

    async def append(events: list[NewEvent]) -> int:
        recorded = await store.append(events)
        now = time.time()
        for record in recorded:
            acks[record.id] = now
        return len(recorded)

    if rate is None:
        batch = [release_event(rng) for _ in range(50)]

        async def appender() -> int:
            n = 0
            while time.perf_counter() < stop:
                n += await append(batch)
            return n

        return sum(await asyncio.gather(*(appender() for _ in range(4))))
    pending: set[asyncio.Task[Any]] = set()
    began, n = time.perf_counter(), 0
    while (due := began + n / rate) < stop:
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(append([release_event(rng)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    await asyncio.gather(*pending)
    return n


@contextlib.asynccontextmanager
async def subscribers(url: str, count: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """The subscriber process with `count` open streams (see bench/sse_subscriber.py)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.sse_subscriber",
        url,
        str(count),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line == b"ready\n", line
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def machine_cpu() -> float:
    """CPU seconds all cores have been busy since boot (/proc/stat: all but idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def received(proc: asyncio.subprocess.Process) -> int:
    """Frames the subscriber process has read so far, over all its streams."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"count\n")
    await proc.stdin.drain()
    return int(await proc.stdout.readline())


async def one_run(
    scenario: Scenario, url: str, dsn: str, pids: tuple[int, int | None], plan: Plan, folder: Path
) -> dict[str, float]:
    store = await PostgresEventStore.open(dsn, min_size=2, max_size=4)
    warmup: dict[int, float] = {}
    acks: dict[int, float] = {}
    try:
        async with subscribers(url, scenario.subscribers) as proc:
            await write(store, scenario.rate, plan.warmup, warmup)
            cpu0 = [process_tree_cpu(pid) if pid else 0.0 for pid in (*pids, proc.pid)]
            cpu0 += [time.process_time(), machine_cpu()]
            frames0, began = await received(proc), time.perf_counter()
            events = await write(store, scenario.rate, plan.seconds, acks)
            frames, seconds = await received(proc) - frames0, time.perf_counter() - began
            cpu = [process_tree_cpu(pid) if pid else 0.0 for pid in (*pids, proc.pid)]
            cpu += [time.process_time(), machine_cpu()]
            await asyncio.sleep(2.0)  # let the last frames arrive
            path = folder / "acks.json"
            every = sorted([*warmup, *acks])
            window = {str(k): v for k, v in acks.items()}
            path.write_bytes(orjson.dumps({"all": every, "window": window}))
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"stop {path}\n".encode())
            await proc.stdin.drain()
            stats = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
    finally:
        await store.close()
    counts = stats["counts"]
    usage = [100 * (b - a) / seconds for a, b in zip(cpu0, cpu, strict=True)]
    return {
        "p50 ms": stats["p50_ms"],
        "p99 ms": stats["p99_ms"],
        "p99.9 ms": stats["p999_ms"],
        "max ms": stats["max_ms"],
        "frames/s": frames / seconds,
        "events/s appended": events / seconds,
        "delivered %": 100 * min(counts) / max(len(every), 1),
        "complete subscribers %": 100 * sum(c == len(every) for c in counts) / len(counts),
        "exact sampled subscribers %": 100 * stats["exact"] / stats["sampled"],
        # Busy CPU of the whole machine that none of the suite's processes used: a figure
        # measured while this is high says more about the neighbours than about Evenflow.
        "other processes CPU %": usage[4] - sum(usage[:4]),
        "service CPU %": usage[0],
        "postgres CPU %": usage[1],
        "subscriber CPU %": usage[2],
    }


def rows_of(results: dict[Scenario, list[dict[str, float]]]) -> list[Row]:
    rows = []
    for scenario, runs in results.items():
        detail = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}
        if scenario.rate is None:
            values = tuple(r["frames/s"] for r in runs)
            rows.append(Row(f"SSE delivery, {scenario.name}", "frames/s", values, detail=detail))
        else:
            assert scenario.target_ms is not None
            values = tuple(r["p99 ms"] for r in runs)
            target = Target("value", "<=", scenario.target_ms)
            figure = f"SSE p99 commit->receipt, {scenario.name}"
            rows.append(Row(figure, "ms", values, target=target, detail=detail))
    return rows


async def _measure(
    admin_dsn: str, postmaster: int | None, plan: Plan, scenarios: tuple[Scenario, ...]
) -> list[Row]:
    results: dict[Scenario, list[dict[str, float]]] = {s: [] for s in scenarios}
    async with scratch_database(admin_dsn) as dsn:
        await (await PostgresEventStore.open(dsn, min_size=1, max_size=1)).close()  # migrate
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
            # evenflow() waits for the service with an event loop of its own: in a thread.
            # One subscriber process holds all the streams: no cap per client address.
            unlimited = {"MAX_CONNECTIONS_PER_CLIENT": "0"}
            served = await asyncio.to_thread(stack.enter_context, evenflow(dsn, env=unlimited))
            url, proc = served.url, served.proc
            for round_ in range(plan.runs):
                for scenario in scenarios:
                    pids = (proc.pid, postmaster)
                    run = await one_run(scenario, url, dsn, pids, plan, Path(folder))
                    results[scenario].append(run)
                    print(
                        f"  run {round_ + 1}/{plan.runs} {scenario.name:<34} p50 "
                        f"{run['p50 ms']:6.1f} ms  p99 {run['p99 ms']:6.1f} ms  "
                        f"{run['frames/s']:>9,.0f} frames/s  delivered "
                        f"{run['delivered %']:.1f}%",
                        file=sys.stderr,
                        flush=True,
                    )
    return rows_of(results)


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    plan = QUICK if quick else FULL
    # The quick run skips saturation (a report, not a target).
    scenarios = tuple(s for s in SCENARIOS if s.rate is not None) if quick else SCENARIOS
    with server() as (admin_dsn, where, postmaster):
        rows = asyncio.run(_measure(admin_dsn, postmaster, plan, scenarios))
    return rows, {
        "database": where,
        "plan": attrs.asdict(plan),
        "processes": "service, subscribers and writer in separate processes",
    }
