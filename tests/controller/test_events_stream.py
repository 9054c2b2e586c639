"""GET /events as a stream: Flynn's SSE framing, history and resume, filters, keep-alives,
slow subscribers, many writers in two processes, and shutdown."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from controller import broadcast, keys, sse
from controller.app import create_app
from controller.broadcast import BROADCASTER, Broadcaster
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent
from eventstore.store import StoreUnavailableError
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY

STREAM = {"Accept": "text/event-stream"}
KEEPALIVE = ":"
RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)


class Stream:
    """An open event stream, read frame by frame."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def frame(self, timeout: float = 10) -> Any:
        """The next frame as {"id", "event", "data"}, or KEEPALIVE; None at the end."""
        fields: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            while True:
                line = await self.response.content.readline()
                if not line:
                    return None
                if line == b":\n" and not fields:
                    return KEEPALIVE
                if line == b"\n":
                    return fields
                name, _, value = line.rstrip(b"\n").partition(b": ")
                fields[name.decode()] = value

    async def events(self, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The next `n` events (keep-alives skipped), decoded."""
        found: list[dict[str, Any]] = []
        while len(found) < n:
            frame = await self.frame(timeout)
            assert frame is not None, f"the stream ended after {len(found)} of {n} events"
            if frame != KEEPALIVE:
                assert int(frame["id"]) == json.loads(frame["data"])["id"]
                found.append(json.loads(frame["data"]))
        return found

    async def until(self, last_id: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Events up to and including `last_id`."""
        found: list[dict[str, Any]] = []
        while not found or found[-1]["id"] < last_id:
            found += await self.events(1, timeout)
        return found


async def open_stream(client: TestClient, path: str = "/events", **headers: str) -> Stream:
    response = await client.get(path, headers={**STREAM, **headers})
    assert response.status == 200, await response.text()
    return Stream(response)


async def listed(client: TestClient, **query: str) -> list[dict[str, Any]]:
    """GET /events as a JSON list, oldest first."""
    response = await client.get("/events", params=query, headers={"Accept": "application/json"})
    assert response.status == 200
    return list(reversed(await response.json()))


async def create_apps(client: TestClient, *names: str) -> list[dict[str, Any]]:
    apps = []
    for name in names:
        response = await client.post("/apps", json={"name": name})
        assert response.status == 200, await response.text()
        apps.append(await response.json())
    return apps


async def test_frames_are_flynns_data_lines_with_id_lines(client: TestClient):
    """Each event: `id: N`, `data: <the envelope GET /events/N returns>`, a blank line."""
    await create_apps(client, "one")
    response = await client.get("/events?past=true", headers=STREAM)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    envelope = await (await client.get("/events/1")).read()
    expected = b"id: 1\ndata: " + envelope + b"\n\n"
    assert await response.content.readexactly(len(expected)) == expected


async def test_past_and_count_replay_the_most_recent_oldest_first_then_live(client: TestClient):
    """past=true&count=N sends the N newest events ascending, then live ones (Flynn's example)."""
    request = RECORDED["events_stream"]["request"]
    assert request["url"] == "/events?count=10&past=true"
    await create_apps(client, *(f"app{i}" for i in range(8)))
    history = await listed(client)
    stream = await open_stream(client, request["url"], **{"Last-Event-Id": "0"})
    assert await stream.events(10) == history[-10:]
    (live,) = await create_apps(client, "later")
    assert [e["app"] for e in await stream.events(2)] == [live["id"]] * 2  # app, route


async def test_frames_carry_the_envelope_fields_in_flynns_order(client: TestClient):
    """The data line holds the same JSON keys, in the same order, as Flynn's recorded stream,
    then Evenflow's `meta` (Flynn's clients ignore a key they do not know)."""
    body = RECORDED["events_stream"]["response"]["body"]
    recorded = [json.loads(f.removeprefix("data: ")) for f in body.split("\n\n") if f]
    assert [e["id"] for e in recorded] == sorted(e["id"] for e in recorded)
    await create_apps(client, "shape")
    (event,) = await (await open_stream(client, "/events?past=true&object_types=app")).events(1)
    with_app = next(e for e in recorded if "app" in e)
    assert list(event) == [*with_app, "meta"]


async def test_without_past_or_last_event_id_only_live_events_come(client: TestClient):
    """A plain stream starts at the log's head when it opens."""
    await create_apps(client, "before")
    stream = await open_stream(client, **{"Last-Event-Id": "0"})
    (after,) = await create_apps(client, "after")
    assert {e["app"] for e in await stream.events(2)} == {after["id"]}


async def test_last_event_id_resumes_right_after_it(client: TestClient):
    """Last-Event-Id (header or query parameter) replays every event after it, then live."""
    await create_apps(client, "a", "b", "c")
    history = await listed(client)
    by_header = await open_stream(client, **{"Last-Event-Id": "2"})
    by_query = await open_stream(client, "/events?last_event_id=2")
    assert await by_header.events(len(history) - 2) == history[2:]
    assert await by_query.events(len(history) - 2) == history[2:]


async def test_a_reconnect_with_last_event_id_misses_nothing(client: TestClient):
    """Events appended while a client is away arrive when it resumes from its last id."""
    await create_apps(client, "x1", "x2")
    first = await open_stream(client, "/events?past=true")
    seen = await first.events(3)
    first.response.close()
    await create_apps(client, "x3", "x4")
    second = await open_stream(client, **{"Last-Event-Id": str(seen[-1]["id"])})
    history = await listed(client)
    assert seen + await second.events(len(history) - 3) == history


async def test_filters_by_app_name_or_id_object_types_and_object_id(client: TestClient):
    """app_id (a name or an id), object_types and object_id select the streamed events."""
    mine, _ = await create_apps(client, "mine", "other")
    by_name = await open_stream(client, "/events?past=true&app_id=mine")
    by_id = await open_stream(client, f"/events?past=true&app_id={mine['id']}")
    routes = await open_stream(client, "/events?past=true&object_types=route,release")
    by_object = await open_stream(client, f"/events?past=true&object_id={mine['id']}")
    await create_apps(client, "third")
    assert [e["app"] for e in await by_name.events(2)] == [mine["id"]] * 2
    assert [e["app"] for e in await by_id.events(2)] == [mine["id"]] * 2
    assert [e["object_type"] for e in await routes.events(3)] == ["route"] * 3
    assert [(e["object_type"], e["object_id"]) for e in await by_object.events(1)] == [
        ("app", mine["id"])
    ]


@pytest.mark.parametrize(
    ("query", "headers", "status", "message"),
    [
        ("", {"Last-Event-Id": "abc"}, 400, "Last-Event-Id is invalid"),
        ("?last_event_id=-1", {}, 400, "Last-Event-Id is invalid"),
        ("?past=true&count=x", {}, 400, "count is invalid"),
        ("?app_id=nope", {}, 404, None),
    ],
)
async def test_bad_parameters_are_refused_before_the_stream_opens(
    client: TestClient, query: str, headers: dict[str, str], status: int, message: str | None
):
    """Invalid Last-Event-Id or count is Flynn's 400, an unknown app a bare 404."""
    response = await client.get("/events" + query, headers={**STREAM, **headers})
    assert response.status == status
    if message is not None:
        assert (await response.json())["message"] == message


async def test_browsers_authenticate_with_the_key_parameter(
    client: TestClient, anonymous: TestClient
):
    """?key= opens an event stream (EventSource cannot send headers) but not a JSON list."""
    await create_apps(client, "seen")
    good = await anonymous.get(f"/events?past=true&key={AUTH_KEY}", headers=STREAM)
    assert good.status == 200
    assert len(await Stream(good).events(2)) == 2
    assert (await anonymous.get("/events?key=wrong", headers=STREAM)).status == 401
    assert (await anonymous.get("/events", headers=STREAM)).status == 401
    listing = await anonymous.get(f"/events?key={AUTH_KEY}", headers={"Accept": "application/json"})
    assert listing.status == 401


async def test_streams_carry_cors_headers(client: TestClient):
    """A browser's cross-origin stream gets its CORS headers with the stream's headers."""
    response = await client.get("/events", headers={**STREAM, "Origin": "https://dash.test"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_keepalive_comment_follows_each_silence(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
):
    """After the keep-alive interval without a message, `:` is sent; events reset the timer."""
    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.05)
    stream = await open_stream(client)
    assert await stream.frame() == KEEPALIVE
    await create_apps(client, "wake")
    frames = [await stream.frame() for _ in range(3)]
    assert [f == KEEPALIVE for f in frames].count(False) == 2
    assert await stream.frame() == KEEPALIVE


async def test_a_subscriber_behind_the_window_catches_up_from_the_log(client: TestClient):
    """With a window smaller than what arrives at once, clients read the store and lose nothing."""
    broadcaster = client.app[BROADCASTER]
    broadcaster.window_events = 3
    live = await open_stream(client)
    await create_apps(client, *(f"w{i}" for i in range(10)))
    replayed = await open_stream(client, "/events?past=true")
    history = await listed(client)
    assert await live.events(len(history)) == history
    assert await replayed.events(len(history)) == history
    assert broadcaster.catch_ups > 0


async def test_a_client_that_stops_reading_resumes_from_the_store_without_loss():
    """A client blocked in a write while the window moves on later gets every event, in order."""
    store = InMemoryEventStore()
    broadcaster = Broadcaster(store, window_events=5)
    await broadcaster.start()
    chunks: list[bytes] = []
    unblocked = asyncio.Event()

    class BlockedResponse:
        async def write(self, data: bytes) -> None:
            chunks.append(data)
            await unblocked.wait()

    serving = asyncio.create_task(broadcaster.serve(BlockedResponse(), 0, ALL_EVENTS))  # type: ignore[arg-type]
    await store.append([_event(0)])
    while not chunks:
        await asyncio.sleep(0)
    for n in range(10):
        await store.append([_event(n * 5 + k + 1) for k in range(5)])
        await asyncio.sleep(0)
    unblocked.set()
    async with asyncio.timeout(5):
        while b"id: 51\n" not in b"".join(chunks):
            await asyncio.sleep(0.01)
    ids = [int(line[4:]) for line in b"".join(chunks).split(b"\n") if line.startswith(b"id: ")]
    assert ids == list(range(1, 52))
    assert broadcaster.catch_ups > 0
    await broadcaster.close()
    await broadcaster.stop()
    await serving
    await store.close()


class FakeTransport:
    """A transport that keeps what is written; `backed_up` makes it report a full buffer."""

    def __init__(self, backed_up: bool = False) -> None:
        self.data = bytearray()
        self.backed_up = backed_up

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 10**9 if self.backed_up else 0


class ChunkedResponse:
    """What the broadcaster needs of a response: chunked framing, and a write (by its task)."""

    chunked = True

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport

    async def write(self, data: bytes) -> None:
        self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))


def unchunk(data: bytes) -> list[int]:
    """The event ids in a chunked body; every chunk must be well formed and not empty."""
    ids, pos = [], 0
    while pos < len(data):
        size_end = data.index(b"\r\n", pos)
        size = int(data[pos:size_end], 16)
        assert size > 0, "an empty chunk would end the body"
        chunk = data[size_end + 2 : size_end + 2 + size]
        assert data[size_end + 2 + size : size_end + 4 + size] == b"\r\n"
        ids += [int(line[4:]) for line in chunk.split(b"\n") if line.startswith(b"id: ")]
        pos = size_end + 4 + size
    return ids


async def test_a_fan_out_to_many_clients_writes_each_event_once_in_order():
    """Hundreds of waiting clients (more than one slice of a fan-out), some backed up, some
    filtered: each gets exactly its events, in id order, in well-formed chunks."""
    store = InMemoryEventStore()
    broadcaster = Broadcaster(store)
    await broadcaster.start()
    transports = [FakeTransport(backed_up=n % 7 == 0) for n in range(300)]
    odd = EventFilter(object_types=("odd",))
    tasks = [
        asyncio.create_task(
            broadcaster.serve(ChunkedResponse(t), 0, odd if n % 5 == 0 else ALL_EVENTS, t)  # type: ignore[arg-type]
        )
        for n, t in enumerate(transports)
    ]
    await asyncio.sleep(0.01)
    for n in range(1, 41):
        kind = "odd" if n % 2 else "even"
        await store.append([NewEvent("AppCreated", kind, f"o{n}", None, b"{}")] * (n % 3 + 1))
        await asyncio.sleep(0)
    last = await store.last_id()
    async with asyncio.timeout(5):
        while any(b"id: %d\n" % last not in t.data for n, t in enumerate(transports) if n % 5):
            await asyncio.sleep(0.01)
    kinds = {r.id: r.object_type async for r in store.read()}
    for n, transport in enumerate(transports):
        expected = [i for i in kinds if n % 5 or kinds[i] == "odd"]
        async with asyncio.timeout(5):
            while unchunk(bytes(transport.data))[-1:] != expected[-1:]:
                await asyncio.sleep(0.01)
        assert unchunk(bytes(transport.data)) == expected
    await broadcaster.close()
    await broadcaster.stop()
    await asyncio.gather(*tasks)
    await store.close()


def _event(n: int) -> NewEvent:
    return NewEvent("AppCreated", "app", f"object-{n}", None, b'{"n":%d}' % n)


async def test_shutdown_ends_every_stream_cleanly(client: TestClient):
    """Closing the server ends idle and busy streams with a proper end of body, at once."""
    await create_apps(client, "bye")
    idle = await open_stream(client)
    busy = await open_stream(client, "/events?past=true")
    await client.server.close()
    for stream in (idle, busy):
        async with asyncio.timeout(5):
            while await stream.frame() is not None:
                pass
        assert stream.response.content.at_eof()


class FailingStore(InMemoryEventStore):
    """A log whose subscription breaks once `fail` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = asyncio.Event()

    async def subscribe(
        self, after: int = 0, filter: EventFilter = ALL_EVENTS
    ) -> AsyncIterator[RecordedEvent]:
        await self.fail.wait()
        raise RuntimeError("the log went away")
        yield  # pragma: no cover - makes this an async generator


class FlakyStore(InMemoryEventStore):
    """A log whose next `failures` reads fail as unavailable."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def read(
        self,
        after: int = 0,
        *,
        until: int | None = None,
        filter: EventFilter = ALL_EVENTS,
        page_size: int = 1000,
    ) -> AsyncIterator[RecordedEvent]:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("the database is restarting")
        async for record in super().read(after, until=until, filter=filter):
            yield record


async def test_a_replay_waits_out_an_unavailable_log_and_misses_nothing(
    aiohttp_client: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """A store that is briefly unavailable delays the history; the stream carries on."""
    monkeypatch.setattr(broadcast, "CATCH_UP_RETRY", 0.01)
    store = FlakyStore()
    client = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
    client.app[BROADCASTER].window_events = 1  # the history comes from the store
    await create_apps(client, "flaky")
    store.failures = 1
    stream = await open_stream(client, "/events?past=true")
    assert [e["id"] for e in await stream.events(2)] == [1, 2]
    assert store.failures == 0


async def test_a_failed_log_subscription_ends_streams_with_an_error_frame(
    aiohttp_client: Any, settings: Settings
):
    """Flynn's `event: error` frame, then the end of the stream; the status turns unhealthy."""
    store = FailingStore()
    client = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
    stream = await open_stream(client)
    store.fail.set()
    frame = await stream.frame()
    assert frame["event"] == b"error"
    assert b"the log went away" in frame["data"]
    assert await stream.frame() is None
    assert (await client.get("/.well-known/status")).status == 500


class BreaksOnce(FailingStore):
    """A log whose subscriptions break when `fail` is set; those made later follow it."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    async def subscribe(
        self, after: int = 0, filter: EventFilter = ALL_EVENTS
    ) -> AsyncIterator[RecordedEvent]:
        if not self.broken:
            await self.fail.wait()
            self.broken = True
            raise RuntimeError("the log went away")
        async for record in InMemoryEventStore.subscribe(self, after, filter):
            yield record


async def test_a_follower_started_anew_brings_the_service_and_its_streams_back(
    aiohttp_client: Any, settings: Settings
):
    """After such a failure the read model's follower is started again (service/tasks.py):
    what another process appends reaches this one's reads and streams again, in order."""
    store = BreaksOnce()
    reader = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
    writer = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
    await create_apps(writer, "before")
    store.fail.set()
    health = reader.app[keys.HEALTH]
    async with asyncio.timeout(5):
        while not health.get("read_model"):
            await asyncio.sleep(0.01)
    assert health["read_model"].startswith("failed: RuntimeError('the log went away')")
    await create_apps(writer, "during")
    async with asyncio.timeout(10):  # a listing does not catch up: only the follower folds
        while "during" not in [a["name"] for a in await (await reader.get("/apps")).json()]:
            await asyncio.sleep(0.05)
    stream = await open_stream(reader, "/events?past=true")
    await create_apps(writer, "after")
    logged = [e["id"] for e in await listed(writer)]
    assert [e["id"] for e in await stream.events(len(logged))] == logged


@pytest.mark.postgres
async def test_fifty_writers_on_two_processes_and_every_subscriber_sees_the_log(
    aiohttp_client: Any, settings: Settings, make_database: Any
):
    """Each subscriber, slow ones and one that reconnects included, gets GET /events reversed."""
    dsn = await make_database()
    stores = [await PostgresEventStore.open(dsn) for _ in range(2)]
    try:
        clients = [
            await aiohttp_client(create_app(settings, store=s), headers=AUTH_HEADERS)
            for s in stores
        ]
        clients[0].server.app[BROADCASTER].window_events = 8  # the slow ones fall behind it
        await _writers_and_subscribers(clients)
    finally:
        for client in clients:
            await client.close()
        for store in stores:
            await store.close()


async def _writers_and_subscribers(clients: list[TestClient]) -> None:
    plain = [await open_stream(c, "/events?past=true") for c in clients]
    apps_only = [await open_stream(c, "/events?past=true&object_types=app") for c in clients]
    slow = await open_stream(clients[0], "/events?past=true")

    async def writer(n: int) -> None:
        for k in range(3):
            response = await clients[(n + k) % 2].post("/apps", json={"name": f"w{n}-{k}"})
            assert response.status == 200, await response.text()

    async def slow_reader() -> list[dict[str, Any]]:
        seen = []
        for _ in range(40):
            seen += await slow.events(1)
            await asyncio.sleep(0.01)
        slow.response.close()  # and resume on the other process
        resumed = await open_stream(clients[1], **{"Last-Event-Id": str(seen[-1]["id"])})
        while len(seen) < 300:  # 150 apps, each with its route
            seen += await resumed.events(1, timeout=30)
            await asyncio.sleep(0.002)
        return seen

    reading = asyncio.create_task(slow_reader())
    await asyncio.gather(*(writer(n) for n in range(50)))
    history = await listed(clients[0])
    assert len(history) == 300
    last = history[-1]["id"]
    for stream in plain:
        assert await stream.until(last) == history
    apps = [e for e in history if e["object_type"] == "app"]
    for stream in apps_only:
        assert await stream.until(apps[-1]["id"]) == apps
    assert await asyncio.wait_for(reading, 60) == history
    assert clients[0].app[BROADCASTER].catch_ups > 0
