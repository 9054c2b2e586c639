"""Read-your-writes across workers and nodes, as a plain socket client meets it: create an
app, then at once open event streams and read it over fresh connections (each request its
own HTTP/1.1 connection with `Connection: close`), then update it. With 2 and 4 workers and
with two `serve` processes on one database: no stream misses an update, none is refused, no
acknowledged app is a 404, and every stream's events come in id order. And the
Evenflow-Event-Id token: a write on one node, a read with its token on the other, always
sees the write."""

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.reliability.conftest import report
from tests.reliability.service import KEY, Service

pytestmark = pytest.mark.postgres

#: Rounds per setting, CONCURRENT at a time: enough that even the lowest failure rate seen
#: before the catch-up existed (one round in fifteen) would almost surely show.
ROUNDS = 60
CONCURRENT = 3
STREAMS = 5
READS = 3
UPDATES = 5
#: Seconds a stream has to show its headers, and then every update.
WAIT = 6.0
TOKEN_ROUNDS = 100
AUTHORIZATION = "Basic " + base64.b64encode(f":{KEY}".encode()).decode()
HEADER = "Evenflow-Event-Id"


def request_bytes(method: str, path: str, body: object = None, headers: str = "") -> bytes:
    data = b"" if body is None else orjson.dumps(body)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: evenflow\r\nAuthorization: {AUTHORIZATION}\r\n"
        f"Connection: close\r\n{headers}"
    )
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + b"\r\n" + data


class Answer:
    """A response read off a socket: status, headers, body (de-chunked)."""

    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1]) if lines[0] else 0
        self.headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
        chunked = self.headers.get("transfer-encoding") == "chunked"
        self.body = dechunk(body) if chunked else body


def dechunk(body: bytes) -> bytes:
    """The data of a chunked body, as far as it arrived."""
    out, at = [], 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            break
        size = int(body[at:end] or b"0", 16)
        if size == 0:
            break
        out.append(body[end + 2 : end + 2 + size])
        at = end + 2 + size + 2
    return b"".join(out)


async def call(port: int, method: str, path: str, body: object = None, headers: str = "") -> Answer:
    """One request on a fresh connection, read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(method, path, body, headers))
        async with asyncio.timeout(WAIT):
            return Answer(await reader.read())
    finally:
        writer.close()


class Subscriber:
    """An event stream on a fresh connection; keeps every byte it receives."""

    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        self.raw = b""
        self.headers_seen = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.headers_seen.set()  # counted as refused: no status line
            return
        writer.write(request_bytes("GET", self.path, headers="Accept: text/event-stream\r\n"))
        try:
            while chunk := await reader.read(65536):
                self.raw += chunk
                if b"\r\n\r\n" in self.raw:
                    self.headers_seen.set()
        finally:
            self.headers_seen.set()  # closed: whatever came is all there is
            writer.close()

    def event_ids(self) -> list[int]:
        lines = Answer(self.raw).body.split(b"\n")
        return [int(line[4:]) for line in lines if line.startswith(b"id: ")]


class Tally:
    def __init__(self) -> None:
        self.rounds = self.failed_rounds = 0
        self.missing = self.refused = self.not_found = self.out_of_order = 0
        self.examples: list[str] = []

    def check(
        self, streams: list["Subscriber"], written: list[int | None], answers: list[Answer]
    ) -> bool:
        """Count what went wrong in a round; whether anything did."""
        failed = False
        for stream in streams:
            status, ids = Answer(stream.raw).status, stream.event_ids()
            if status != 200:
                self.refused += 1
                self.examples.append(f"stream {stream.path} on :{stream.port}: {status}")
            if None in written:  # no positions in the answers: count the events
                missing = max(len(written) - len(ids), 0)
            else:
                missing = len(set(written) - set(ids))
            self.missing += missing
            in_order = ids == sorted(set(ids))
            self.out_of_order += not in_order
            failed = failed or status != 200 or missing > 0 or not in_order
        not_found = sum(answer.status == 404 for answer in answers)
        self.not_found += not_found
        return failed or not_found > 0

    def __str__(self) -> str:
        return (
            f"{self.failed_rounds} of {self.rounds} rounds failed: {self.missing} updates "
            f"missing from streams, {self.refused} streams refused, "
            f"{self.not_found} reads and writes answered 404, "
            f"{self.out_of_order} streams out of order"
        )


async def one_round(ports: list[int], n: int, tally: Tally) -> None:
    """Create, subscribe and read at once over fresh connections, update, check."""
    port = ports[n % len(ports)]
    created = await call(port, "POST", "/apps", {"name": f"ryw-{n}-{time.monotonic_ns()}"})
    assert created.status == 200, created.body
    app_id = orjson.loads(created.body)["id"]
    spread = [ports[(n + k + 1) % len(ports)] for k in range(max(STREAMS, READS))]
    subscribers = [Subscriber(spread[k], f"/events?app_id={app_id}") for k in range(STREAMS)]
    try:
        answers = await asyncio.gather(
            *[call(spread[k], "GET", f"/apps/{app_id}") for k in range(READS)],
            *[call(spread[k], "GET", f"/apps/{app_id}/log") for k in range(READS)],
        )
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*[s.headers_seen.wait() for s in subscribers])
        written: list[int | None] = []
        for k in range(UPDATES):
            path = f"/apps/{app_id}"
            answer = await call(spread[k % len(spread)], "POST", path, {"meta": {"k": str(k)}})
            answers.append(answer)
            if answer.status == 200:
                position = answer.headers.get(HEADER.lower())
                written.append(None if position is None else int(position))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if all(len(s.event_ids()) >= len(written) or s.task.done() for s in subscribers):
                break
            await asyncio.sleep(0.02)
    finally:
        for s in subscribers:
            s.task.cancel()
    failed = tally.check(subscribers, written, answers)
    tally.rounds += 1
    tally.failed_rounds += failed


async def run_rounds(ports: list[int]) -> Tally:
    tally = Tally()
    for start in range(0, ROUNDS, CONCURRENT):
        batch = range(start, min(start + CONCURRENT, ROUNDS))
        await asyncio.gather(*[one_round(ports, n, tally) for n in batch])
    return tally


@pytest.fixture
async def start(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
) -> AsyncIterator[Callable[[int, int], Awaitable[list[Service]]]]:
    """Starts `nodes` services of `workers` each on one fresh database."""
    services: list[Service] = []

    async def started(nodes: int, workers: int) -> list[Service]:
        dsn = await make_database()
        for node in range(nodes):
            services.append(Service(dsn, workdir / f"node{node}", workers=workers))
        for service in services:
            await service.ready(session)
        return services

    for node in range(2):
        (workdir / f"node{node}").mkdir()
    yield started
    for service in services:
        service.stop()


@pytest.mark.parametrize(
    ("nodes", "workers"), [(1, 2), (1, 4), (2, 1)], ids=["2-workers", "4-workers", "2-nodes"]
)
async def test_every_acknowledged_write_is_seen_by_the_next_request_wherever_it_lands(
    start: Callable[[int, int], Awaitable[list[Service]]],
    nodes: int,
    workers: int,
    request: pytest.FixtureRequest,
):
    """Streams and reads opened right after a create, on whatever worker or node, see the
    app and every later update, in id order: zero misses, zero refusals, zero 404s."""
    services = await start(nodes, workers)
    tally = await run_rounds([service.port for service in services])
    report(request, "read-your-writes", str(tally))
    assert (tally.missing, tally.refused, tally.not_found, tally.out_of_order) == (0, 0, 0, 0), (
        f"{tally}; e.g. {tally.examples[:3]}"
    )


async def test_a_read_with_the_token_of_a_write_on_another_node_sees_it(
    start: Callable[[int, int], Awaitable[list[Service]]], request: pytest.FixtureRequest
):
    """A write on node A, then a read on node B sending A's Evenflow-Event-Id: the read
    always shows the write (the app's new meta, and the new app in the list)."""
    a, b = (service.port for service in await start(2, 1))
    created = await call(a, "POST", "/apps", {"name": "token"})
    app_id = orjson.loads(created.body)["id"]
    stale = 0
    for n in range(TOKEN_ROUNDS):
        write = await call(a, "POST", f"/apps/{app_id}", {"meta": {"n": str(n)}})
        token = write.headers.get(HEADER.lower(), "")
        read = await call(b, "GET", f"/apps/{app_id}", headers=f"{HEADER}: {token}\r\n")
        assert read.status == 200, read.body
        stale += orjson.loads(read.body)["meta"].get("n") != str(n)
    for n in range(TOKEN_ROUNDS // 10):
        made = await call(a, "POST", "/apps", {"name": f"listed-{n}"})
        token = made.headers.get(HEADER.lower(), "")
        listing = await call(b, "GET", "/apps", headers=f"{HEADER}: {token}\r\n")
        stale += f"listed-{n}" not in [app["name"] for app in orjson.loads(listing.body)]
    report(request, "reads with a token that missed the write", stale)
    assert stale == 0
