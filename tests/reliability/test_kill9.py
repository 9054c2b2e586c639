"""kill -9 of the service in the middle of hundreds of concurrent writes: nothing acknowledged
is lost, nothing is written twice, no command is half-written, and the read models equal a
fresh replay of the log."""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from eventstore.postgres import PostgresEventStore
from projections.sql import SqlReadModel
from replay.verify import Service as VerifiedService
from replay.verify import verify_read_model, verify_service
from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, KEY, Service

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

#: Concurrent writers: each keeps one request in flight until the kill.
WRITERS = 300
#: Acknowledged creations before the kill (the burst is well under way by then).
ACKED_BEFORE_KILL = 1500
DOMAIN = "evenflow.test"


@pytest.mark.parametrize("workers", [1, 2])
async def test_kill_9_during_a_write_burst_loses_and_duplicates_nothing(
    make_database: Callable[[], Awaitable[str]],
    session: aiohttp.ClientSession,
    workdir: Path,
    request: pytest.FixtureRequest,
    workers: int,
):
    """Every 2xx write survives a kill -9 exactly once and whole; the read models match the log.

    With two worker processes, every process of the service is killed at once.
    """
    dsn = await make_database()
    # With a route domain, creating an app is one command of two events (app and route).
    # The writers are one client: more connections than MAX_CONNECTIONS_PER_CLIENT allows.
    env = {"DEFAULT_ROUTE_DOMAIN": DOMAIN, "MAX_CONNECTIONS_PER_CLIENT": "0"}
    service = Service(dsn, workdir, env, workers=workers)
    await service.ready(session)
    acked: dict[str, str] = {}  # app name -> id, from each 2xx answer
    refused: Counter[str] = Counter()
    in_flight = 0
    killed = asyncio.Event()

    async def writer(w: int) -> None:
        nonlocal in_flight
        n = 0
        while not killed.is_set():
            name = f"w{w}-{n}"
            n += 1
            in_flight += 1
            try:
                async with session.post(
                    f"{service.url}/apps", data=orjson.dumps({"name": name}), headers=AUTH | JSON
                ) as r:
                    body = await r.read()
                    if r.status == 200:
                        acked[name] = orjson.loads(body)["id"]
                    else:
                        refused[orjson.loads(body)["code"]] += 1
            except (TimeoutError, aiohttp.ClientError):
                pass  # the service died with this request unanswered
            finally:
                in_flight -= 1

    writers = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
    deadline = time.monotonic() + 60
    while len(acked) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    in_flight_at_kill = in_flight
    acked_at_kill = len(acked)
    service.kill()
    killed.set()
    await asyncio.gather(*writers)
    assert acked_at_kill >= ACKED_BEFORE_KILL, service.log()
    # Workers race each other for the log's head; a write that loses the race is decided
    # again under the log's lock, so none is refused.
    assert not refused, refused
    assert in_flight_at_kill >= WRITERS // 2, "the burst was not under way at the kill"

    restarted = Service(dsn, workdir, {"DEFAULT_ROUTE_DOMAIN": DOMAIN})
    try:
        await restarted.ready(session)
        store = await PostgresEventStore.open(dsn)
        try:
            lost, committed = await _check_the_log(store, acked)
            for name, app_id in list(acked.items())[:: max(1, len(acked) // 200)]:
                async with session.get(f"{restarted.url}/apps/{name}", headers=AUTH) as r:
                    assert r.status == 200 and (await r.json())["id"] == app_id
            await _check_the_read_models(store, restarted, dsn)
        finally:
            await store.close()
    finally:
        restarted.stop()
    report(request, "writes in flight at the kill -9", in_flight_at_kill)
    report(request, "acknowledged writes", len(acked))
    report(request, "acknowledged writes lost", lost)
    report(request, "unacknowledged writes found committed", committed - len(acked))
    assert lost == 0


async def _check_the_log(store: PostgresEventStore, acked: dict[str, str]) -> tuple[int, int]:
    """(acknowledged writes missing, apps created); asserts no duplicate, no half command."""
    events = [e async for e in store.read()]
    created = [e for e in events if e.type == "AppCreated"]
    names = Counter(orjson.loads(e.data)["name"] for e in created)
    assert max(names.values()) == 1, "an app was created twice"
    ids = {orjson.loads(e.data)["name"]: e.object_id for e in created}
    lost = sum(1 for name, app_id in acked.items() if ids.get(name) != app_id)
    # One command, one atomic append: every app has its route, every route its app.
    routes = Counter(e.app_id for e in events if e.type == "RouteCreated")
    assert set(routes) == {e.object_id for e in created}, "a command was half-written"
    assert max(routes.values()) == 1
    assert len({e.id for e in events}) == len(events)
    return lost, len(created)


async def _check_the_read_models(store: PostgresEventStore, service: Service, dsn: str) -> None:
    """The SQL read model and the restarted service's answers equal a fresh fold of the log."""
    head = await store.last_id()
    sql = SqlReadModel(store.pool)
    deadline = time.monotonic() + 60
    while await sql.last_event_id() < head:
        assert time.monotonic() < deadline, "the SQL read model did not catch up"
        await asyncio.sleep(0.1)
    assert await verify_read_model(store, sql) == ([], [])

    async def compare() -> list[str]:  # in a thread of its own: the comparison's GETs block
        log = await PostgresEventStore.open(dsn, migrate_schema=False)
        try:
            return (await verify_service(log, VerifiedService(service.url, KEY)))[0]
        finally:
            await log.close()

    assert await asyncio.to_thread(asyncio.run, compare()) == []
