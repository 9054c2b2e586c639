"""Several controller processes on one database, and restarts: the log is the only truth."""

import asyncio
import os
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from tests.processes import ROOT, free_port, serve_command

pytestmark = pytest.mark.postgres

KEY = "proc-key"
AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY)}


class Service:
    """`python -m controller serve` in its own process."""

    def __init__(self, dsn: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"DATABASE_URL": dsn, "AUTH_KEY": KEY, "LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            serve_command(self.port),
            cwd=ROOT,
            env=env,
        )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the service exited"
            try:
                async with session.get(f"{self.url}/.well-known/status", headers=AUTH) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the service did not become ready")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH) as s:
        yield s


@pytest.fixture
async def two_services(
    make_database: Callable[[], Awaitable[str]], session: aiohttp.ClientSession
) -> AsyncIterator[tuple[Service, Service]]:
    dsn = await make_database()
    services = (Service(dsn), Service(dsn))
    try:
        for service in services:
            await service.ready(session)
        yield services
    finally:
        for service in services:
            if service.proc.poll() is None:
                assert service.stop() == 0, "SIGTERM should end the service cleanly"


async def test_a_write_through_one_process_is_read_through_the_other_promptly(
    two_services: tuple[Service, Service], session: aiohttp.ClientSession
):
    """An app created through A is served by B, typically within milliseconds (median < 100 ms)."""
    a, b = two_services
    delays = []
    for i in range(20):
        async with session.post(f"{a.url}/apps", json={"name": f"seen-{i}"}) as r:
            assert r.status == 200
        started = time.monotonic()
        while True:
            async with session.get(f"{b.url}/apps/seen-{i}") as r:
                if r.status == 200:
                    break
                assert r.status == 404
            assert time.monotonic() - started < 5, "B never saw the write"
            await asyncio.sleep(0.001)
        delays.append(time.monotonic() - started)
    assert statistics.median(delays) < 0.1


async def test_concurrent_creates_of_one_name_through_both_yield_one_app(
    two_services: tuple[Service, Service], session: aiohttp.ClientSession
):
    """The same name created at once through both processes: exactly one 200 and one 409."""
    a, b = two_services
    for i in range(10):
        responses = await asyncio.gather(
            *[session.post(f"{s.url}/apps", json={"name": f"race-{i}"}) for s in (a, b)]
        )
        assert sorted(r.status for r in responses) == [200, 409]
        for r in responses:
            r.release()
    for service in (a, b):
        async with session.get(f"{service.url}/apps") as r:
            names = [app["name"] for app in await r.json()]
        assert sorted(names) == sorted(f"race-{i}" for i in range(10))
