"""SIGTERM: in-flight writes finish, streams end cleanly, and the process exits within 10 s,
even with a request that would never finish by itself."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from eventstore.postgres import PostgresEventStore
from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, LocalProvider, Service

pytestmark = pytest.mark.postgres

#: The longest a SIGTERM may take to end the service.
EXIT_WITHIN = 10.0


class SlowProvider(LocalProvider):
    """A resource provider that answers after `delay` seconds (None: never)."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay

    async def _provision(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay if self.delay is not None else 3600)
        return web.json_response({"id": "/db/1", "env": {"DATABASE_URL": "postgres://db"}})

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/db", self._provision)


@pytest.fixture
async def service(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
) -> AsyncIterator[Service]:
    running = Service(await make_database(), workdir)
    try:
        await running.ready(session)
        yield running
    finally:
        running.stop()


async def post(session: aiohttp.ClientSession, url: str, body: object) -> tuple[int, bytes]:
    async with session.post(url, data=orjson.dumps(body), headers=AUTH | JSON) as r:
        return r.status, await r.read()


async def _stream(session: aiohttp.ClientSession, url: str) -> bytes:
    """An event stream read to its end; raises if the end is not a clean end of body."""
    headers = AUTH | {"Accept": "text/event-stream"}
    async with session.get(f"{url}/events?past=true", headers=headers, timeout=None) as r:
        assert r.status == 200
        return await r.read()


async def test_sigterm_finishes_in_flight_writes_ends_streams_and_exits(
    service: Service, session: aiohttp.ClientSession, request: pytest.FixtureRequest
):
    """Writes under way at SIGTERM are answered, every committed write was acknowledged,
    streams end with a proper end of body, and the process exits 0 promptly."""
    async with SlowProvider(delay=2.0) as provider_url:
        await post(session, f"{service.url}/providers", {"name": "slow", "url": provider_url})
        streams = [asyncio.create_task(_stream(session, service.url)) for _ in range(5)]
        answered: dict[str, int] = {}
        refusals: list[bytes] = []
        stopping = asyncio.Event()

        async def writer(w: int) -> None:
            n = 0
            while not stopping.is_set():
                name = f"w{w}-{n}"
                n += 1
                try:
                    answered[name], body = await post(
                        session, f"{service.url}/apps", {"name": name}
                    )
                    if answered[name] != 200:
                        refusals.append(body)
                except aiohttp.ClientError:
                    return  # refused or closed: the service is going away
            return

        writers = [asyncio.create_task(writer(w)) for w in range(50)]
        slow = asyncio.create_task(
            post(session, f"{service.url}/providers/slow/resources", {"config": {}})
        )
        await asyncio.sleep(0.5)  # the provider call is under way, writes too
        signalled = time.monotonic()
        status = await asyncio.to_thread(service.terminate, EXIT_WITHIN + 5)
        took = time.monotonic() - signalled
        stopping.set()
        await asyncio.gather(*writers)
        slow_status, slow_body = await slow
        bodies = await asyncio.gather(*streams)  # raises if a stream was cut
    assert status == 0, service.log()
    assert took < EXIT_WITHIN
    assert slow_status == 200, slow_body  # in flight at SIGTERM, finished
    assert not refusals, refusals
    assert all(b.endswith(b"\n\n") for b in bodies)
    committed = await _created_apps(service)
    assert committed <= set(answered), "a committed write went unanswered"
    report(
        request, "SIGTERM to exit, with writes and a 2 s provider call in flight (s)", f"{took:.2f}"
    )


async def _created_apps(service: Service) -> set[str]:
    store = await PostgresEventStore.open(service.dsn, migrate_schema=False)
    try:
        return {orjson.loads(e.data)["name"] async for e in store.read() if e.type == "AppCreated"}
    finally:
        await store.close()


@pytest.mark.faults
@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_exits_within_10_s_even_with_a_request_that_never_ends(
    make_database: Callable[[], Awaitable[str]],
    workdir: Path,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
    workers: int,
):
    """A provider that never answers does not hold the shutdown past its bound (nor, with
    worker processes, the parent's)."""
    service = Service(await make_database(), workdir, workers=workers)
    try:
        await service.ready(session)
        await _stuck_request_then_sigterm(service, session, request)
    finally:
        service.stop()


async def _stuck_request_then_sigterm(
    service: Service, session: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    async with SlowProvider(delay=None) as provider_url:
        await post(session, f"{service.url}/providers", {"name": "stuck", "url": provider_url})
        stuck = asyncio.create_task(
            post(session, f"{service.url}/providers/stuck/resources", {"config": {}})
        )
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        status = await asyncio.to_thread(service.terminate, EXIT_WITHIN + 5)
        took = time.monotonic() - signalled
        with pytest.raises(aiohttp.ClientError):
            await stuck  # cut at the end of the grace period: nothing was recorded
    assert status == 0, service.log()
    assert took < EXIT_WITHIN
    report(request, "SIGTERM to exit, with a request that never ends (s)", f"{took:.2f}")
