"""PostgreSQL stopped for 10 s under load, then started again: writes get a prompt, retryable
503 meanwhile, reads go on from memory, the status says unhealthy, and afterwards the service
recovers by itself and its event streams resume without losing or repeating an event."""

import asyncio
import time
from typing import Any

import aiohttp
import asyncpg
import attrs
import orjson
import pytest

from eventstore.postgres import PostgresEventStore
from localpg import LocalPG
from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, Service

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

OUTAGE = 10.0
WRITERS = 20
READERS = 5
SUBSCRIBERS = 3
#: A write while the database is down must be answered within this many seconds.
PROMPT = 3.0


@attrs.define
class Answer:
    sent: float
    took: float
    status: int
    body: bytes


@attrs.define
class Load:
    """Writers, readers, status polls and event-stream subscribers against one service."""

    service: Service
    session: aiohttp.ClientSession
    writes: list[Answer] = attrs.field(factory=list)
    reads: list[Answer] = attrs.field(factory=list)
    statuses: list[Answer] = attrs.field(factory=list)
    acked: dict[str, str] = attrs.field(factory=dict)
    streams: list[list[int]] = attrs.field(factory=list)
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def _call(self, method: str, path: str, body: Any = None, *, keep: bool = True) -> Answer:
        """One request's answer; its body only if `keep` (a listing of every app, read in a
        loop, would otherwise hold gigabytes by the end)."""
        sent = time.monotonic()
        data = None if body is None else orjson.dumps(body)
        async with self.session.request(
            method, self.service.url + path, data=data, headers=AUTH | JSON
        ) as r:
            answer = await r.read()
            return Answer(sent, time.monotonic() - sent, r.status, answer if keep else b"")

    async def writer(self, w: int) -> None:
        n = 0
        while not self.stop.is_set():
            name = f"w{w}-{n}"
            n += 1
            answer = await self._call("POST", "/apps", {"name": name})
            self.writes.append(answer)
            if answer.status == 200:
                self.acked[name] = orjson.loads(answer.body)["id"]
            else:
                await asyncio.sleep(0.05)  # a client backing off a little

    async def reader(self) -> None:
        while not self.stop.is_set():
            self.reads.append(await self._call("GET", "/apps", keep=False))
            await asyncio.sleep(0.01)

    async def status_poller(self) -> None:
        while not self.stop.is_set():
            self.statuses.append(await self._call("GET", "/.well-known/status"))
            await asyncio.sleep(0.1)

    async def subscriber(self) -> None:
        """Every event from the first, as a stream; ids kept in arrival order."""
        ids: list[int] = []
        self.streams.append(ids)
        headers = AUTH | {"Accept": "text/event-stream"}
        async with self.session.get(
            f"{self.service.url}/events?past=true", headers=headers, timeout=None
        ) as r:
            assert r.status == 200
            async for line in r.content:
                if line.startswith(b"id: "):
                    ids.append(int(line[4:]))


async def _start(load: Load) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(load.subscriber()) for _ in range(SUBSCRIBERS)]
    tasks += [asyncio.create_task(load.writer(w)) for w in range(WRITERS)]
    tasks += [asyncio.create_task(load.reader()) for _ in range(READERS)]
    tasks.append(asyncio.create_task(load.status_poller()))
    return tasks


async def test_a_database_outage_is_a_prompt_503_and_the_service_recovers_by_itself(
    own_pg: LocalPG,
    service: Service,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
):
    """Writes 503 promptly, reads and status answer, then all resumes with no loss."""
    load = Load(service, session)
    tasks = await _start(load)
    await asyncio.sleep(2)
    await asyncio.to_thread(own_pg.stop)
    down = time.monotonic()
    await asyncio.sleep(OUTAGE)
    starting = time.monotonic()
    own_pg.start()  # in the main thread: the server's parent-death signal follows it
    up = time.monotonic()
    recovered = await _first_write_after(load, up)
    healthy = await _healthy_after(load, up)
    await asyncio.sleep(2)
    load.stop.set()
    await asyncio.gather(*tasks[SUBSCRIBERS:])

    during = [a for a in load.writes if a.sent > down + 0.5 and a.sent + a.took < starting]
    assert during, "no write was tried while the database was down"
    for answer in during:
        assert answer.status == 503, answer
        document = orjson.loads(answer.body)
        assert document["code"] == "service_unavailable" and document["retry"] is True
        assert answer.took < PROMPT, f"a write took {answer.took:.1f}s to be refused"
    assert {a.status for a in load.writes} <= {200, 503}, "a write got neither 2xx nor 503"
    assert {a.status for a in load.reads} == {200}, "a read failed during the outage"
    assert {a.status for a in load.statuses} <= {200, 500}
    _check_status_during(load, down + 1.0, starting)

    try:
        await _check_streams(load, own_pg.dsn("evenflow"))
    finally:
        for task in tasks[:SUBSCRIBERS]:
            task.cancel()
    report(request, "writes refused with 503 during the outage", len(during))
    report(request, "slowest refusal (s)", f"{max(a.took for a in during):.3f}")
    report(request, "a refusal", during[-1].body.decode())
    report(
        request,
        "recovery: first acknowledged write after the database returned (s)",
        f"{recovered:.2f}",
    )
    report(request, "recovery: status healthy after the database returned (s)", f"{healthy:.2f}")
    assert recovered < 10 and healthy < 15


async def _first_write_after(load: Load, since: float) -> float:
    """Seconds from `since` to the first acknowledged write sent after it (probing too)."""
    n = 0
    while time.monotonic() - since < 60:
        answer = await load._call("POST", "/apps", {"name": f"probe-{n}"})
        n += 1
        if answer.status == 200:
            load.acked[f"probe-{n - 1}"] = orjson.loads(answer.body)["id"]
            return answer.sent + answer.took - since
        await asyncio.sleep(0.02)
    raise AssertionError("no write succeeded within 60 s of the database's return")


async def _healthy_after(load: Load, since: float) -> float:
    answer = None
    while time.monotonic() - since < 60:
        answer = await load._call("GET", "/.well-known/status")
        if answer.status == 200:
            return answer.sent + answer.took - since
        await asyncio.sleep(0.05)
    said = answer.body.decode() if answer is not None else "nothing"
    raise AssertionError(f"the status did not turn healthy within 60 s; it said {said}")


def _check_status_during(load: Load, start: float, end: float) -> None:
    during = [a for a in load.statuses if start < a.sent and a.sent + a.took < end]
    assert during, "the status was not asked during the outage"
    for answer in during:
        assert answer.status == 500
        data = orjson.loads(answer.body)["data"]
        assert data["status"] == "unhealthy" and "database" in data["problems"], data
        assert answer.took < PROMPT


async def _check_streams(load: Load, dsn: str) -> None:
    """Each stream got every event of the log once, in order; every 2xx write is in the log."""
    store = await PostgresEventStore.open(dsn, migrate_schema=False)
    try:
        events = [e async for e in store.read()]
    finally:
        await store.close()
    created = {orjson.loads(e.data)["name"]: e.object_id for e in events if e.type == "AppCreated"}
    assert all(created.get(name) == app_id for name, app_id in load.acked.items())
    expected = [e.id for e in events]
    deadline = time.monotonic() + 30
    while any(len(ids) < len(expected) for ids in load.streams):
        assert time.monotonic() < deadline, "a stream did not catch up"
        await asyncio.sleep(0.1)
    for ids in load.streams:
        assert ids == expected


async def test_a_read_only_database_as_after_a_failover_is_an_actionable_503(
    own_pg: LocalPG,
    service: Service,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
):
    """Flynn #3809: writes to a primary turned read-only answered "Something went wrong".
    Here they are a retryable 503 that says the write was not acknowledged; reads go on,
    and writes succeed again once the database accepts them."""
    load = Load(service, session)
    admin = await asyncpg.connect(own_pg.dsn())
    try:
        await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        await admin.execute("SELECT pg_reload_conf()")
        refused = await load._call("POST", "/apps", {"name": "during-failover"})
        assert (await load._call("GET", "/apps")).status == 200
    finally:
        await admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.close()
    document = orjson.loads(refused.body)
    assert refused.status == 503 and document["code"] == "service_unavailable", document
    assert document["retry"] is True and "not acknowledged" in document["message"]
    assert "read-only" in document["message"]
    report(request, "a write to a read-only primary", refused.body.decode())
    recovered = await _first_write_after(load, time.monotonic())
    assert recovered < 10
