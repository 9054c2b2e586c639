"""Thousands of idle event streams and readers that stop reading: file descriptors and memory
stay bounded, the MAX_STREAMS cap is a 503 document, and the fd limit is raised at start-up."""

import asyncio
import resource
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from controller.limits import raise_fd_limit
from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, Service

pytestmark = pytest.mark.postgres

STREAMS = 2000
#: Memory a stream may hold in the service, on average (a task, a request, a transport).
PER_STREAM = 64 * 1024
SLOW_READERS = 100
#: Bytes of events written while the slow readers read nothing.
FLOOD = 24 * 1024 * 1024


@pytest.fixture(autouse=True)
def enough_fds_here() -> None:
    """This test process holds thousands of sockets too."""
    if raise_fd_limit() < STREAMS + 500:
        pytest.skip("RLIMIT_NOFILE's hard limit is too low for this test")


@pytest.fixture
async def service(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
) -> AsyncIterator[Service]:
    # All from one address: above MAX_CONNECTIONS_PER_CLIENT's default.
    env = {"MAX_STREAMS": str(STREAMS), "MAX_CONNECTIONS_PER_CLIENT": "0"}
    running = Service(await make_database(), workdir, env)
    try:
        await running.ready(session)
        yield running
    finally:
        running.stop()


async def open_stream(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    response = await session.get(
        f"{url}/events", headers=AUTH | {"Accept": "text/event-stream"}, timeout=None
    )
    return response


def fd_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files limit")


async def test_two_thousand_idle_streams_stay_bounded_and_the_next_is_a_503(
    service: Service, session: aiohttp.ClientSession, request: pytest.FixtureRequest
):
    """2000 idle streams cost one fd and a bounded amount of memory each; stream 2001 is a
    503 service_unavailable document; once they close, the fds are given back."""
    soft, hard = fd_limit(service.proc.pid)
    assert soft == hard, "RLIMIT_NOFILE was not raised to the hard limit"
    fds, rss = service.fd_count(), service.rss_bytes()
    streams: list[aiohttp.ClientResponse] = []
    for _ in range(STREAMS // 100):
        streams += await asyncio.gather(*[open_stream(session, service.url) for _ in range(100)])
    assert all(s.status == 200 for s in streams)
    over = await open_stream(session, service.url)
    document = orjson.loads(await over.read())
    assert over.status == 503 and document["code"] == "service_unavailable"
    assert document["retry"] is True and "MAX_STREAMS" in document["message"]
    async with session.post(
        f"{service.url}/apps", data=b'{"name": "news"}', headers=AUTH | JSON
    ) as r:
        assert r.status == 200  # a write while every stream slot is taken
    news = await asyncio.gather(*[s.content.readuntil(b"\n\n") for s in streams[:: STREAMS // 20]])
    assert all(b'"news"' in frame for frame in news)
    fds_open, rss_open = service.fd_count(), service.rss_bytes()
    for s in streams:
        s.close()
    await asyncio.sleep(1)
    fds_closed = service.fd_count()
    report(
        request,
        "fds: before, with 2000 streams, after closing them",
        f"{fds}, {fds_open}, {fds_closed}",
    )
    report(request, "RSS growth with 2000 idle streams (MiB)", f"{(rss_open - rss) / 2**20:.1f}")
    assert fds_open <= fds + STREAMS + 50
    assert rss_open - rss < STREAMS * PER_STREAM
    assert fds_closed <= fds + 50
    again = await open_stream(session, service.url)
    assert again.status == 200  # the slots were given back
    again.close()


def slow_reader(port: int) -> socket.socket:
    """A client that asks for the stream and then reads nothing at all."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    auth = AUTH["Authorization"]
    sock.sendall(
        f"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
        f"Authorization: {auth}\r\n\r\n".encode()
    )
    return sock


async def test_readers_that_stop_reading_do_not_grow_the_service(
    service: Service, session: aiohttp.ClientSession, request: pytest.FixtureRequest
):
    """100 streams whose clients read nothing while 24 MiB of events go out: the service
    buffers a bounded amount per stream, not the flood once per stream (2.4 GiB)."""
    readers = [slow_reader(service.port) for _ in range(SLOW_READERS)]
    try:
        await asyncio.sleep(0.5)
        rss = service.rss_bytes()
        meta = {"blob": "x" * 8000}
        sem = asyncio.Semaphore(32)

        async def write(n: int) -> None:
            async with (
                sem,
                session.post(
                    f"{service.url}/apps",
                    data=orjson.dumps({"name": f"flood-{n}", "meta": meta}),
                    headers=AUTH | JSON,
                ) as r,
            ):
                assert r.status == 200

        await asyncio.gather(*[write(n) for n in range(FLOOD // 8000)])
        await asyncio.sleep(1)
        growth = service.rss_bytes() - rss
        report(
            request,
            "RSS growth with 100 stalled readers and a 24 MiB flood (MiB)",
            f"{growth / 2**20:.1f}",
        )
        # The read model, its caches and the stream window hold the flood a few times over
        # (about 4.5 times here, without any reader); each stalled stream holds at most its
        # transport's buffer and one write (measured: about 0.65 MiB).
        assert growth < 5 * FLOOD + SLOW_READERS * 1024 * 1024
        async with session.get(f"{service.url}/.well-known/status", headers=AUTH) as r:
            assert r.status == 200
    finally:
        for sock in readers:
            sock.close()


def test_the_soft_fd_limit_is_raised_to_the_hard_limit():
    """raise_fd_limit leaves soft == hard (or unlimited) and reports it."""
    soft = raise_fd_limit()
    now, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert now == hard or hard == resource.RLIM_INFINITY
    assert soft == now or now == resource.RLIM_INFINITY


async def test_streams_past_max_streams_are_refused_in_process(aiohttp_client: Any):
    """With MAX_STREAMS=2: two streams open, the third is a 503 document, a closed one's slot
    is given back, and ordinary requests are not counted."""
    from controller.app import create_app
    from eventstore.memory import InMemoryEventStore
    from service.settings import Settings

    app = create_app(Settings(auth_keys=("k",), max_streams=2), store=InMemoryEventStore())
    client = await aiohttp_client(
        app, headers={"Authorization": aiohttp.encode_basic_auth("", "k")}
    )
    stream = {"Accept": "text/event-stream"}
    first, second = [await client.get("/events", headers=stream) for _ in range(2)]
    assert (first.status, second.status) == (200, 200)
    for _ in range(5):
        assert (await client.get("/apps")).status == 200
    third = await client.get("/events", headers=stream)
    assert third.status == 503 and (await third.json())["code"] == "service_unavailable"
    first.close()
    for _ in range(100):
        again = await client.get("/events", headers=stream)
        if again.status == 200:
            break
        await asyncio.sleep(0.02)
    assert again.status == 200


async def test_one_write_to_a_stream_holds_about_write_bytes_whatever_the_frames():
    """Whatever the size of the events, a client's next write is at most WRITE_BYTES plus
    one frame (at least one frame, so that an event larger than that still goes out)."""
    from controller.broadcast import WRITE_BYTES, Broadcaster, Subscription
    from eventstore.memory import InMemoryEventStore
    from eventstore.record import ALL_EVENTS, NewEvent

    store = InMemoryEventStore()
    # A window that holds all of them (frames and payloads, about 40 MiB): served from memory.
    broadcaster = Broadcaster(store, window_bytes=64 * 1024 * 1024)
    await broadcaster.start()
    try:
        for size in (100, 40_000, 400_000):
            data = b'{"blob": "%s"}' % (b"x" * size)
            await store.append(
                [NewEvent("Marked", "marker", f"m{n}", None, data) for n in range(50)]
            )
        while broadcaster.head < 150:
            await asyncio.sleep(0.01)
        sub = Subscription(0, ALL_EVENTS)
        sizes = []
        while sub.cursor < broadcaster.head:
            chunk = broadcaster.collect(sub)
            assert chunk is not None
            sizes.append(len(chunk))
        assert max(sizes) <= WRITE_BYTES + 400_100 and sum(sizes) > 150 * 100
        assert len(sizes) > 3
    finally:
        await broadcaster.close(grace=0)
        await broadcaster.stop()
