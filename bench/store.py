"""The event log benchmark: concurrent writes through the dispatcher (its batches are the
log's group commit) against plain INSERTs, one append per transaction, and forward reads.

Everything runs in one process against one PostgreSQL (a throwaway LocalPG cluster with
fsync and synchronous_commit on, or BENCH_DATABASE_URL), in a scratch database dropped at
the end. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs
import orjson

from bench import Op, Usage, closed_loop, scratch_database, server
from bench.report import Row, Target
from commands.dispatch import Dispatcher
from domain.codec import decode
from domain.events import Event
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import PAGE_SIZE
from projections.memory import MemoryReadModel
from projections.state import State


@attrs.frozen
class Plan:
    """How long and how often each figure is measured."""

    seconds: float  # per measured write run
    warmup: float  # before each write run, not counted
    runs: int
    read_events: int


FULL = Plan(seconds=3.0, warmup=0.5, runs=3, read_events=1_000_000)
QUICK = Plan(seconds=0.7, warmup=0.2, runs=1, read_events=50_000)

# The shape of `events`, with a bigserial id and no index but the primary key.
BASELINE_DDL = """
CREATE TABLE bench_baseline (
    id bigserial PRIMARY KEY, type text NOT NULL, object_type text NOT NULL,
    object_id text NOT NULL, app_id uuid, op text, unique_id text, data json NOT NULL,
    created_at timestamptz NOT NULL)
"""
BASELINE_INSERT = """
INSERT INTO bench_baseline (type, object_type, object_id, app_id, op, unique_id, data, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
"""
# The query PostgresEventStore.read_page runs for an unfiltered read, minus the store.
RAW_PAGE = """
SELECT event_id, type, object_type, object_id, app_id::text, op, unique_id, data, created_at
FROM events WHERE event_id > $1 ORDER BY event_id LIMIT $2
"""
# Next xid and WAL position. Each write transaction takes one xid (a refused optimistic
# append and a plain SELECT take none), so the xid delta over a run counts its commits.
COUNTERS = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, pg_current_wal_lsn()"
SETTINGS = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers")
EVENT_COLUMNS = ["event_id", "type", "object_type", "object_id", "app_id", "op", "unique_id",
                 "data", "created_at"]  # fmt: skip


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def release_event(rng: random.Random) -> NewEvent:
    """A ReleaseCreated as the controller writes it: ~300 bytes of Flynn release JSON."""
    app_id, release_id = _uuid(rng), _uuid(rng)
    data = {
        "id": release_id,
        "app_id": app_id,
        "artifacts": [_uuid(rng)],
        "env": {"PORT": "8080", "LOG_LEVEL": "info"},
        "processes": {"web": {"args": ["bin/web"], "ports": [{"port": 8080, "proto": "tcp"}]}},
        "created_at": "2026-11-27T09:00:00.123456Z",
    }
    return NewEvent("ReleaseCreated", "release", release_id, app_id, orjson.dumps(data))


async def _init_connection(conn: asyncpg.Connection) -> None:
    # The store's json codec, so the baseline sends the payload bytes unchanged as well.
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary"
    )


# -- measuring -----------------------------------------------------------------------------


@attrs.frozen
class Bench:
    """What every scenario needs."""

    dsn: str
    conn: asyncpg.Connection  # control connection: resets and server counters only
    plan: Plan
    postmaster: int | None


@attrs.frozen
class Run:
    """One measured run: its rate and what explains it."""

    rate: float
    detail: dict[str, float]


async def measure_writes(bench: Bench, ops: Sequence[Op]) -> Run:
    """events/s of `ops` in a closed loop, after a warm-up (connections, prepared statements)."""
    await closed_loop(ops, bench.plan.warmup)
    xid0, lsn0 = await bench.conn.fetchrow(COUNTERS)
    usage0, began = Usage.now(bench.postmaster), time.perf_counter()
    count, events, latencies = await closed_loop(ops, bench.plan.seconds)
    seconds = time.perf_counter() - began
    usage = Usage.now(bench.postmaster).percent_since(usage0, seconds)
    xid1, lsn1 = await bench.conn.fetchrow(COUNTERS)
    wal = await bench.conn.fetchval("SELECT pg_wal_lsn_diff($1, $2)::bigint", lsn1, lsn0)
    centiles = statistics.quantiles(latencies, n=100)
    per_append = {} if count == events else {"appends/s": count / seconds}
    return Run(
        events / seconds,
        {
            **per_append,
            "p50 ms": centiles[49] * 1000,
            "p99 ms": centiles[98] * 1000,
            "appends/commit": count / max(xid1 - xid0, 1),
            "WAL bytes/event": wal / max(events, 1),
            **usage,
        },
    )


async def reset(conn: asyncpg.Connection) -> None:
    """Empty both tables and checkpoint, so every write run starts from the same state."""
    await conn.execute("TRUNCATE events, bench_baseline")
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):  # a shared server
        await conn.execute("CHECKPOINT")


# -- write scenarios -----------------------------------------------------------------------


async def store_run(bench: Bench) -> Run:
    """One appender, one event at a time, straight to the store: one transaction each."""
    store = await PostgresEventStore.open(bench.dsn, min_size=2, max_size=4)
    rng = random.Random(1)

    async def op() -> int:
        return len(await store.append([release_event(rng)]))

    try:
        return await measure_writes(bench, [op])
    finally:
        await store.close()


@attrs.frozen
class Write:
    """A command recording the given events (what a decider would have decided)."""

    events: tuple[Event, ...]
    now: datetime


def write(state: State, command: Write) -> list[Event]:
    return list(command.events)


async def dispatch_run(bench: Bench, writers: int, batch: int) -> Run:
    """`writers` callers, each writing a command of `batch` events at a time through one
    dispatcher, which batches them into appends and folds what they record, as the
    service's handlers do."""
    store = await PostgresEventStore.open(bench.dsn, min_size=2, max_size=4)
    dispatcher = Dispatcher(store, MemoryReadModel(), {Write: write})
    dispatcher.start()
    rng = random.Random(writers * 1000 + batch)

    def op_for(events: tuple[Event, ...]) -> Op:
        async def op() -> int:
            # The same releases again: folded, each replaces itself (the state stays small).
            return len(await dispatcher.handle(Write(events, datetime.now(UTC))))

        return op

    def releases() -> tuple[Event, ...]:
        return tuple(_decoded(release_event(rng)) for _ in range(batch))

    try:
        return await measure_writes(bench, [op_for(releases()) for _ in range(writers)])
    finally:
        await dispatcher.stop()
        await store.close()


def _decoded(event: NewEvent) -> Event:
    return decode(RecordedEvent.of(event, 0, datetime.now(UTC)))


async def baseline_run(bench: Bench, connections: int) -> Run:
    """`connections` connections, each committing one single-row INSERT at a time."""
    n, rng = connections, random.Random(connections)
    pool = await asyncpg.create_pool(bench.dsn, min_size=n, max_size=n, init=_init_connection)
    held = [await pool.acquire() for _ in range(n)]

    def op_for(conn: asyncpg.Connection, e: NewEvent) -> Op:
        args = (e.type, e.object_type, e.object_id, e.app_id, e.op, e.unique_id, e.data)

        async def op() -> int:
            await conn.execute(BASELINE_INSERT, *args)  # autocommit: INSERT; COMMIT
            return 1

        return op

    try:
        return await measure_writes(bench, [op_for(c, release_event(rng)) for c in held])
    finally:
        for conn in held:
            await pool.release(conn)
        await pool.close()


Scenario = Callable[[Bench], Awaitable[Run]]


def _dispatch(writers: int, batch: int) -> Scenario:
    return lambda bench: dispatch_run(bench, writers, batch)


def _baseline(connections: int) -> Scenario:
    return lambda bench: baseline_run(bench, connections)


WRITES: dict[str, Scenario] = {
    "baseline x16": _baseline(16),
    "baseline x64": _baseline(64),
    "store.append x1": store_run,
    **{f"write 1 x{n}": _dispatch(n, 1) for n in (1, 16, 64)},
    **{f"write 10 x{n}": _dispatch(n, 10) for n in (1, 16, 64)},
}


async def write_runs(bench: Bench) -> dict[str, list[Run]]:
    """Every write scenario, round after round: drift in the machine's load hits all alike."""
    await (await PostgresEventStore.open(bench.dsn, min_size=1, max_size=1)).close()  # migrate
    await bench.conn.execute(BASELINE_DDL)
    results: dict[str, list[Run]] = {key: [] for key in WRITES}
    for round_ in range(bench.plan.runs):
        for key, scenario in WRITES.items():
            await reset(bench.conn)
            results[key].append(await scenario(bench))
            _progress(f"run {round_ + 1}/{bench.plan.runs} {key}", results[key][-1].rate)
    return results


# -- read scenarios ------------------------------------------------------------------------


def log_records(n: int) -> Iterator[tuple[Any, ...]]:
    """`n` rows for `events` with explicit ids: 100 apps' releases, ~300-byte payloads."""
    rng = random.Random(7)
    templates = [release_event(rng) for _ in range(100)]
    created_at = datetime.now(UTC)
    for event_id in range(1, n + 1):
        e = templates[event_id % len(templates)]
        yield (event_id, e.type, e.object_type, f"{event_id:032x}", e.app_id, e.op, e.unique_id,
               e.data, created_at)  # fmt: skip


async def load_log(conn: asyncpg.Connection, n: int) -> dict[str, float]:
    """Fill `events` by COPY (not through append: loading is not what is measured)."""
    await conn.execute("TRUNCATE events")
    began = time.perf_counter()
    await conn.copy_records_to_table("events", records=log_records(n), columns=EVENT_COLUMNS)
    loaded = time.perf_counter()
    # Sets hint bits and the visibility map now, so that no measured read pays for them.
    await conn.execute("VACUUM (ANALYZE) events")
    vacuumed = time.perf_counter()
    await read_raw(conn)  # untimed: pulls the table into the caches
    return {"COPY load events/s": n / (loaded - began), "VACUUM s": vacuumed - loaded}


async def read_raw(conn: asyncpg.Connection) -> int:
    after, count = 0, 0
    while True:
        page = await conn.fetch(RAW_PAGE, after, PAGE_SIZE)
        count += len(page)
        if len(page) < PAGE_SIZE:
            return count
        after = page[-1][0]


async def read_store(store: PostgresEventStore, decode: bool) -> int:
    count = 0
    async for event in store.read():
        if decode:
            orjson.loads(event.data)
        count += 1
    return count


async def measure_read(bench: Bench, read: Callable[[], Awaitable[int]]) -> Run:
    usage0, began = Usage.now(bench.postmaster), time.perf_counter()
    count = await read()
    seconds = time.perf_counter() - began
    assert count == bench.plan.read_events, f"read {count} events"
    return Run(count / seconds, Usage.now(bench.postmaster).percent_since(usage0, seconds))


async def read_runs(bench: Bench) -> tuple[dict[str, list[Run]], dict[str, float]]:
    """Each read variant over the whole log, round after round, plus what loading took."""
    await _init_connection(bench.conn)
    load = await load_log(bench.conn, bench.plan.read_events)
    store = await PostgresEventStore.open(bench.dsn, min_size=1, max_size=2)
    variants: dict[str, Callable[[], Awaitable[int]]] = {
        "raw": lambda: read_raw(bench.conn),
        "store": lambda: read_store(store, decode=False),
        "orjson": lambda: read_store(store, decode=True),
    }
    results: dict[str, list[Run]] = {key: [] for key in variants}
    try:
        for round_ in range(bench.plan.runs):
            for key, read in variants.items():
                results[key].append(await measure_read(bench, read))
                _progress(f"run {round_ + 1}/{bench.plan.runs} read {key}", results[key][-1].rate)
    finally:
        await store.close()
    return results, load


# -- the suite -----------------------------------------------------------------------------


def _progress(what: str, rate: float) -> None:
    print(f"  {what:<28} {rate:>12,.0f} events/s", file=sys.stderr, flush=True)


def _row(
    figure: str,
    unit: str,
    runs: list[Run],
    baseline: tuple[str, float] | None = None,
    target: Target | None = None,
    extra: dict[str, float] | None = None,
) -> Row:
    """All runs' rates (the row shows their median), and the median of each detail."""
    detail = {k: statistics.median(run.detail[k] for run in runs) for k in runs[0].detail}
    name, value = baseline or (None, None)
    rates = tuple(run.rate for run in runs)
    return Row(figure, unit, rates, name, value, target, detail | (extra or {}))


def build_rows(
    writes: dict[str, list[Run]], reads: dict[str, list[Run]], load: dict[str, float]
) -> list[Row]:
    base = _row("baseline INSERT;COMMIT x16 conns", "appends/s", writes["baseline x16"])
    vs = ("INSERT x16", base.value)
    rows = [base, _row("baseline INSERT;COMMIT x64 conns", "appends/s", writes["baseline x64"], vs)]
    rows.append(
        _row("store.append: 1 event x1 appender", "appends/s", writes["store.append x1"], vs)
    )
    for n in (1, 16, 64):
        target = Target("ratio", ">=", 2.0) if n == 64 else None
        figure = f"write 1 event x{n} writers (dispatcher)"
        rows.append(_row(figure, "writes/s", writes[f"write 1 x{n}"], vs, target))
    for n in (1, 16, 64):
        figure = f"write 10 events x{n} writers (dispatcher)"
        rows.append(_row(figure, "events/s", writes[f"write 10 x{n}"], vs))
    raw = _row("read: raw asyncpg pages", "events/s", reads["raw"], extra=load)
    read = _row("read: store.read()", "events/s", reads["store"], ("raw asyncpg", raw.value),
                Target("value", ">=", 300_000))  # fmt: skip
    decoded = _row("read: store.read() + orjson.loads", "events/s", reads["orjson"],
                   ("store.read()", read.value))  # fmt: skip
    return [*rows, raw, read, decoded]


async def _measure(
    admin_dsn: str, plan: Plan, postmaster: int | None
) -> tuple[list[Row], dict[str, Any]]:
    async with scratch_database(admin_dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            settings = {name: await conn.fetchval(f"SHOW {name}") for name in SETTINGS}
            if settings["fsync"] != "on" or settings["synchronous_commit"] != "on":
                print(f"warning: the server is not durable: {settings}", file=sys.stderr)
            bench = Bench(dsn, conn, plan, postmaster)
            writes = await write_runs(bench)
            reads, load = await read_runs(bench)
        finally:
            await conn.close()
    return build_rows(writes, reads, load), {"server_settings": settings}


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    """Start (or reach) the server, measure everything, and say how it was measured."""
    plan = QUICK if quick else FULL
    with server() as (admin_dsn, where, postmaster):
        rows, meta = asyncio.run(_measure(admin_dsn, plan, postmaster))
    return rows, {
        "database": where,
        "plan": attrs.asdict(plan),
        "load_generator": "same process and asyncio event loop as the store",
        **meta,
    }
