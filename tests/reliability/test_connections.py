"""Connections are bounded below HTTP: a request head that trickles in, or never comes, is
cut off at HEADER_TIMEOUT, and a body at BODY_TIMEOUT; a body announced over MAX_BODY_SIZE
is refused before it is read; connections over MAX_CONNECTIONS_PER_CLIENT from one address,
or over MAX_CONNECTIONS in all, are refused at once while other clients are served. Streams
outlive every one of these timeouts."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from controller import server
from controller.app import create_app
from controller.connections import client_of
from controller.server import Served
from eventstore.memory import InMemoryEventStore
from service.settings import Settings
from tests.reliability.service import AUTH, KEY, OLD_KEY, Service

#: Extra seconds a timeout may take to show on this busy 2-core machine.
SLACK = 1.5
OTHER_ADDRESS = "127.0.0.2"  # Linux routes all of 127/8 to the loopback interface

Start = Callable[..., Awaitable[Served]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts the service in this process, as `serve` does, with the given settings."""
    started: list[Served] = []

    async def start_with(**settings: Any) -> Served:
        chosen = Settings(auth_keys=(KEY, OLD_KEY), **settings)
        app = create_app(chosen, store=InMemoryEventStore())
        served = await server.start(app, chosen, "127.0.0.1", 0)
        started.append(served)
        return served

    yield start_with
    for served in started:
        await served.stop()


class Raw:
    """A raw TCP connection to the service, for what an HTTP client will not do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.1") -> "Raw":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    async def answer(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body of the next response (read to the connection's end
        when it has no Content-Length)."""
        async with asyncio.timeout(timeout):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            length = headers.get("Content-Length")
            body = await (self.reader.readexactly(int(length)) if length else self.reader.read())
        return int(lines[0].split()[1]), headers, body

    async def closed_within(self, seconds: float) -> float:
        """Seconds until the service closed the connection (reading what it still sends)."""
        began = time.monotonic()
        async with asyncio.timeout(seconds):
            while await self.reader.read(65536):
                pass
        return time.monotonic() - began

    def close(self) -> None:
        self.writer.close()


async def get(port: int, path: str = "/apps", source: str = "127.0.0.1") -> int:
    """GET path on a new connection from `source`; the status."""
    raw = await Raw.open(port, source)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
        raw.writer.write(request.encode() + b"Connection: close\r\n\r\n")
        status, _, _ = await raw.answer()
        return status
    finally:
        raw.close()


# -- heads and bodies --------------------------------------------------------------------


async def test_a_head_trickled_a_byte_a_second_is_cut_off_at_the_header_timeout(start: Start):
    """One header byte a second never completes a head: the connection gets a 408 and is
    closed at HEADER_TIMEOUT, while another client is served meanwhile."""
    served = await start(header_timeout=2.0)
    raw = await Raw.open(served.port)
    began = time.monotonic()
    head = b"GET /apps HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100

    async def trickle() -> None:
        for byte in head:
            raw.writer.write(bytes([byte]))
            await asyncio.sleep(1.0)

    trickling = asyncio.create_task(trickle())
    try:
        assert await get(served.port) == 200
        status, headers, body = await raw.answer(timeout=2.0 + SLACK)
        took = time.monotonic() - began
        assert status == 408 and headers["Connection"] == "close"
        assert orjson.loads(body)["code"] == "request_timeout"
        assert 1.9 < took < 2.0 + SLACK, took
    finally:
        trickling.cancel()
        raw.close()


async def test_silent_and_idle_connections_are_closed_at_the_header_timeout(start: Start):
    """A connection that sends nothing, and a kept-alive one idle after a request, are
    closed at HEADER_TIMEOUT."""
    served = await start(header_timeout=1.0)
    silent = await Raw.open(served.port)
    idle = await Raw.open(served.port)
    idle.writer.write(
        f"GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n\r\n".encode()
    )
    assert (await idle.answer())[0] == 200
    try:
        assert await silent.closed_within(1.0 + SLACK) > 0.9
        assert await idle.closed_within(1.0 + SLACK) < 1.0 + SLACK
    finally:
        silent.close()
        idle.close()


async def test_empty_lines_before_a_head_do_not_count_as_one(start: Start):
    """Blank lines first (which HTTP allows before a request) do not stop the head's clock."""
    served = await start(header_timeout=1.0)
    raw = await Raw.open(served.port)
    try:
        raw.writer.write(b"\r\n\r\n\r\nGET /apps HTTP/1.1\r\nHo")
        status, _, _ = await raw.answer(timeout=1.0 + SLACK)
        assert status == 408
    finally:
        raw.close()


async def test_a_stream_outlives_the_header_timeout(start: Start):
    """An event stream is not cut by the head's timeout: it keeps delivering events after
    three times HEADER_TIMEOUT."""
    served = await start(header_timeout=1.0)
    url = f"http://127.0.0.1:{served.port}"
    async with aiohttp.ClientSession(headers=AUTH) as session:
        stream = await session.get(
            f"{url}/events", headers={"Accept": "text/event-stream"}, timeout=None
        )
        assert stream.status == 200
        await asyncio.sleep(3.0)
        async with session.post(f"{url}/apps", json={"name": "late"}) as r:
            assert r.status == 200
        async with asyncio.timeout(5):
            while not (line := await stream.content.readline()).startswith(b"data: "):
                assert line, "the stream ended"
        assert b'"late"' in line
        stream.close()


async def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(start: Start):
    """A Content-Length over MAX_BODY_SIZE is a 413 request_body_too_big as soon as the head
    is in (no body byte sent), with or without a key; the connection is then closed."""
    served = await start(max_body_size=1024, header_timeout=1.0)
    for authorization in (f"Authorization: {AUTH['Authorization']}\r\n", ""):
        raw = await Raw.open(served.port)
        try:
            raw.writer.write(
                b"POST /apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + authorization.encode()
                + b"Content-Length: 1000000000\r\n\r\n"
            )
            status, headers, body = await raw.answer(timeout=SLACK)
            assert status == 413 and headers["Connection"] == "close"
            assert orjson.loads(body)["code"] == "request_body_too_big"
            assert await raw.closed_within(1.0 + SLACK) < 1.0 + SLACK
        finally:
            raw.close()


async def test_a_trickled_body_is_cut_off_at_the_body_timeout(start: Start):
    """A body that does not arrive in full within BODY_TIMEOUT is a 408 request_timeout,
    and the connection is closed; nothing was written."""
    served = await start(body_timeout=1.0)
    raw = await Raw.open(served.port)
    began = time.monotonic()
    try:
        raw.writer.write(
            f"POST /apps HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
            '{"name": '.encode()
        )
        status, headers, body = await raw.answer(timeout=1.0 + SLACK)
        assert status == 408 and headers["Connection"] == "close"
        document = orjson.loads(body)
        assert document["code"] == "request_timeout" and "BODY_TIMEOUT" in document["message"]
        assert time.monotonic() - began > 0.9
    finally:
        raw.close()
    url = f"http://127.0.0.1:{served.port}/apps"
    async with aiohttp.ClientSession(headers=AUTH) as session, session.get(url) as r:
        assert await r.json() == []


# -- caps ----------------------------------------------------------------------------------


async def test_connections_over_the_per_client_cap_are_refused_at_once(start: Start):
    """With MAX_CONNECTIONS_PER_CLIENT=4, a fifth connection from one address is answered a
    503 with Retry-After at once and closed, while another address is served; once one of
    the four closes, the address gets in again."""
    served = await start(max_connections_per_client=4)
    held = [await Raw.open(served.port) for _ in range(4)]
    try:
        refused = await Raw.open(served.port)
        began = time.monotonic()
        status, headers, body = await refused.answer(timeout=1.0)
        refused.close()
        assert time.monotonic() - began < 1.0
        document = orjson.loads(body)
        assert status == 503 and headers["Retry-After"] == "1"
        assert document["code"] == "service_unavailable" and document["retry"] is True
        assert "MAX_CONNECTIONS_PER_CLIENT" in document["message"]
        assert await get(served.port, source=OTHER_ADDRESS) == 200
        held.pop().close()
        await asyncio.sleep(0.2)
        assert await get(served.port) == 200
    finally:
        for raw in held:
            raw.close()


async def test_connections_over_the_process_cap_are_refused_from_any_address(start: Start):
    """With MAX_CONNECTIONS=3 (and no per-client cap), the fourth open connection is refused
    with a 503, whichever address it comes from."""
    served = await start(max_connections=3, max_connections_per_client=0)
    held = [await Raw.open(served.port, source) for source in ("127.0.0.1", "127.0.0.3")]
    held.append(await Raw.open(served.port))
    try:
        for source in ("127.0.0.1", OTHER_ADDRESS):
            refused = await Raw.open(served.port, source)
            status, _, body = await refused.answer(timeout=1.0)
            refused.close()
            assert status == 503 and "MAX_CONNECTIONS" in orjson.loads(body)["message"]
    finally:
        for raw in held:
            raw.close()


def test_a_client_is_an_ipv4_address_or_an_ipv6_slash_64():
    """Connections count against their IPv4 address, or their IPv6 address's /64 (one
    machine's share), an IPv4-mapped IPv6 address as the IPv4 one."""
    assert client_of(("192.0.2.7", 1234)) == "192.0.2.7"
    first = client_of(("2001:db8:1:2:aaaa::1", 1, 0, 0))
    assert first == client_of(("2001:db8:1:2:ffff::9", 2, 0, 0)) == "2001:db8:1:2::/64"
    assert client_of(("2001:db8:1:3::1", 1, 0, 0)) != first
    assert client_of(("::ffff:192.0.2.7", 1, 0, 0)) == "192.0.2.7"
    assert client_of("/run/evenflow.sock") == ""


# -- the service as started from the command line -------------------------------------------


@pytest.mark.postgres
async def test_the_service_applies_the_connection_settings_from_its_environment(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
):
    """`serve` with HEADER_TIMEOUT=2 and MAX_CONNECTIONS_PER_CLIENT=3 cuts off a trickled
    head at 2 s and refuses a fourth connection from one address with a 503."""
    env = {"HEADER_TIMEOUT": "2", "MAX_CONNECTIONS_PER_CLIENT": "3"}
    service = Service(await make_database(), workdir, env)
    try:
        await service.ready(session)
        await session.close()  # its kept-alive connection would count against the cap
        slow = await Raw.open(service.port)
        slow.writer.write(b"GET /apps HTTP/1.1\r\nHo")
        began = time.monotonic()
        assert (await slow.answer(timeout=2.0 + SLACK))[0] == 408
        assert time.monotonic() - began > 1.9
        held = [await Raw.open(service.port) for _ in range(3)]
        refused = await Raw.open(service.port)
        assert (await refused.answer(timeout=1.0))[0] == 503
        assert await get(service.port, source=OTHER_ADDRESS) == 200
        for raw in [slow, refused, *held]:
            raw.close()
    finally:
        service.stop()
