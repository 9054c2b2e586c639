"""Properties only the Postgres log can break: commit order across processes, crashes, NOTIFY."""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import orjson
import pytest

import eventstore.postgres as pg_module
from eventstore.migrate import SchemaTooNewError, migrate
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import StoreUnavailableError
from localpg import LocalPG
from tests.eventstore.conftest import ev

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
MakeDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def dsn(make_database: MakeDatabase) -> str:
    return await make_database()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PostgresEventStore]:
    s = await PostgresEventStore.open(dsn)
    yield s
    await s.close()


def spawn_appender(dsn: str, name: str, appends: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.eventstore.appender", dsn, name, str(appends), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE if "--acks" in extra else subprocess.DEVNULL,
        text=True,
    )


async def read_all(store: PostgresEventStore) -> list[RecordedEvent]:
    return [e async for e in store.read()]


async def test_two_processes_appending_while_a_subscriber_tails_lose_and_reorder_nothing(
    dsn: str, store: PostgresEventStore
):
    """Two OS processes append thousands of events; the tail equals the final log exactly."""
    per_process = 1500
    seen: list[RecordedEvent] = []

    async def tail() -> None:
        async for event in store.subscribe(after=0):
            seen.append(event)
            if len(seen) == 2 * per_process:
                return

    tailer = asyncio.create_task(tail())
    procs = [spawn_appender(dsn, name, per_process, "--concurrency", "16") for name in ("p1", "p2")]
    for proc in procs:
        assert await asyncio.to_thread(proc.wait, 120) == 0
    await asyncio.wait_for(tailer, 30)
    log = await read_all(store)
    assert len(log) == 2 * per_process
    assert seen == log
    assert [e.id for e in log] == sorted({e.id for e in log})
    assert {e.object_id.split("-")[0] for e in log} == {"p1", "p2"}


async def test_kill_9_mid_append_keeps_every_acknowledged_append_whole(
    dsn: str, store: PostgresEventStore
):
    """After kill -9 of an appending process, every acknowledged append is whole and there."""
    proc = spawn_appender(dsn, "k", 100_000, "--concurrency", "32", "--batch", "5", "--acks")
    assert proc.stdout is not None
    acked: list[str] = []
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    while len(acked) < 300 and time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)
        if line.startswith("ack "):
            acked.append(line.split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()  # acks printed before the kill landed count too
    acked += [line.split()[1] for line in rest.splitlines() if line.startswith("ack ")]
    proc.stdout.close()
    proc.wait()
    assert len(acked) >= 300
    counts = Counter(e.object_id for e in await read_all(store))
    assert all(counts[marker] == 5 for marker in acked), "an acknowledged append was lost"
    assert set(counts.values()) == {5}, "an append was partly written"


async def test_a_lost_notification_is_covered_by_polling(
    dsn: str, store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
):
    """An event written without NOTIFY (a foreign writer) still reaches a subscriber."""
    monkeypatch.setattr(pg_module, "POLL_INTERVAL", 0.2)
    sub = store.subscribe(after=0)
    first = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0.3)  # the subscriber is now waiting for a wake-up
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            head, now, _ = await conn.fetchrow(pg_module._LOCK_HEAD, [])
            await conn.execute(
                "INSERT INTO events (event_id, type, object_type, object_id, data, created_at)"
                " VALUES ($1, 'Foreign', 'x', 'silent', '{}', $2)",
                head + 1,
                now,
            )
    finally:
        await conn.close()
    event = await asyncio.wait_for(first, 5)
    assert event.object_id == "silent"


async def test_subscriber_survives_the_listener_connection_being_killed(
    dsn: str, store: PostgresEventStore
):
    """Killing the LISTEN connection loses nothing: the listener reconnects and wakes readers."""
    sub = store.subscribe(after=0)
    await store.append([ev("before")])
    assert (await asyncio.wait_for(anext(sub), 5)).object_id == "before"
    admin = await asyncpg.connect(dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    finally:
        await admin.close()
    assert killed == 1
    await store.append([ev("after")])
    assert (await asyncio.wait_for(anext(sub), 5)).object_id == "after"
    for _ in range(50):
        if store.listening:
            break
        await asyncio.sleep(0.1)
    assert store.listening


async def test_migrations_are_idempotent_and_refuse_a_newer_schema(dsn: str):
    """Migrating twice changes nothing; a database from a newer version is refused."""
    conn = await asyncpg.connect(dsn)
    try:
        assert await migrate(conn, "eventstore", "eventstore") == []  # the template has it
        assert await migrate(conn, "eventstore", "eventstore") == []
        await conn.execute(
            "INSERT INTO schema_migrations (component, version, name) "
            "VALUES ('eventstore', 999, 'x')"
        )
        with pytest.raises(SchemaTooNewError):
            await migrate(conn, "eventstore", "eventstore")
    finally:
        await conn.close()


async def test_fresh_database_is_migrated_on_open(local_pg: LocalPG):
    """Opening a store on an empty database creates the log's schema."""
    admin = await asyncpg.connect(local_pg.dsn())
    name = f"fresh_{os.getpid()}"
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        store = await PostgresEventStore.open(local_pg.dsn(name))
        assert [e.object_id for e in await store.append([ev("first")])] == ["first"]
        await store.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


async def test_appends_fail_fast_while_the_database_is_down_and_recover_after():
    """With Postgres stopped, appends fail promptly and retryably; afterwards all resumes."""
    with (
        tempfile.TemporaryDirectory(prefix="pgdown-") as root,
        LocalPG(Path(root), fast=True) as pg,
    ):
        store = await PostgresEventStore.open(pg.dsn())
        try:
            before = await store.append([ev("before")])
            seen: list[RecordedEvent] = []

            async def tail() -> None:
                async for event in store.subscribe(after=0):
                    seen.append(event)
                    if len(seen) == 2:
                        return

            tailer = asyncio.create_task(tail())
            pg.stop()
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                await store.append([ev("during")])
            assert time.monotonic() - started < 5
            pg.start()
            after = await store.append([ev("after")])
            await asyncio.wait_for(tailer, 10)
            assert seen == before + after
        finally:
            await store.close()


async def test_append_after_serializes_writers_of_two_processes(dsn: str):
    """Two stores on one database (two processes) counting through append_after, while
    they also append optimistically: no update is lost, none is applied twice."""
    stores = [await PostgresEventStore.open(dsn) for _ in range(2)]

    def step(seen: list[RecordedEvent]) -> list[NewEvent]:
        values = [orjson.loads(e.data)["n"] for e in seen if e.object_id == "counter"]
        data = orjson.dumps({"n": (values or [0])[-1] + 1})
        return [NewEvent("Counted", "counter", "counter", None, data)]

    async def count(store: PostgresEventStore) -> None:
        for _ in range(15):
            await store.append_after(0, step)

    async def noise(store: PostgresEventStore) -> None:
        for i in range(15):
            await store.append([NewEvent("Noise", "noise", f"n{i}", None, b"{}")])

    try:
        await asyncio.gather(*[count(s) for s in stores * 3], *[noise(s) for s in stores])
        log = [e async for e in stores[0].read()]
        values = [orjson.loads(e.data)["n"] for e in log if e.object_id == "counter"]
        assert values == list(range(1, 91))
        assert [e.id for e in log] == sorted({e.id for e in log})
    finally:
        for store in stores:
            await store.close()
