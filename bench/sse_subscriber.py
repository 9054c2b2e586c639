"""The SSE suite's subscriber process: many event streams on raw sockets, cheap to read.

`python -m bench.sse_subscriber URL COUNT` opens COUNT streams and prints "ready". On
stdin, "count" answers the frames received so far; "stop ACKS_FILE" (JSON: the ids of every
event appended since, and for the measured window each id -> when its append was
acknowledged) prints one JSON line: per-stream frame counts, an exact check of the sampled
streams, and latency percentiles from acknowledgment to receipt.

A plain epoll loop, not asyncio: on a small machine the client shares the cores with the
service, and every microsecond it spends per frame is taken from the service.
"""

from __future__ import annotations

import array
import base64
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

import orjson

KEY = "bench-key"
#: Every SAMPLE-th stream parses each frame's event id (for latency and an exact check);
#: the others only count frames.
SAMPLE = 4


class Reader:
    """One stream: how many frames came and, if sampled, which and when."""

    def __init__(self, sock: socket.socket, sampled: bool) -> None:
        self.sock = sock
        self.sampled = sampled
        self.buffer = b""
        self.frames = 0
        self.ids = array.array("q")
        self.received = array.array("d")

    def feed(self, data: bytes, now: float) -> None:
        buf = self.buffer + data if self.buffer else data
        last = buf.rfind(b"}\n\n")  # the envelope's last brace: a frame's end
        if last < 0:
            self.buffer = buf
            return
        self.buffer = buf[last + 3 :]
        self.frames += buf.count(b"}\n\n", 0, last + 3)
        if not self.sampled:
            return
        pos = 0
        while (start := buf.find(b'data: {"id":', pos, last)) >= 0:
            start += 12
            pos = buf.index(b",", start)
            self.ids.append(int(buf[start:pos]))
            self.received.append(now)


def connect(host: str, port: int, request: bytes, sampled: bool) -> Reader:
    """A stream whose response headers have arrived (so its start position is fixed)."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    assert b" 200 " in head[:16], head[:200]
    reader = Reader(sock, sampled)
    rest = head[head.index(b"\r\n\r\n") + 4 :]
    if rest:
        reader.feed(rest, time.time())
    sock.setblocking(False)
    return reader


def subscribe(url: str, count: int) -> None:
    host, port = url.removeprefix("http://").split(":")
    token = base64.b64encode(f":{KEY}".encode()).decode()
    request = (
        f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Basic {token}\r\n\r\n"
    ).encode()
    readers = {}
    poll = select.epoll()
    for n in range(count):
        reader = connect(host, int(port), request, sampled=n % SAMPLE == 0)
        readers[reader.sock.fileno()] = reader
        poll.register(reader.sock.fileno(), select.EPOLLIN)
    stdin = sys.stdin.fileno()
    poll.register(stdin, select.EPOLLIN)
    print("ready", flush=True)
    while True:
        events = poll.poll()
        now = time.time()
        for fd, _ in events:
            if fd == stdin:
                line = sys.stdin.readline()
                if line.startswith("count"):
                    print(sum(r.frames for r in readers.values()), flush=True)
                    continue
                report(list(readers.values()), orjson.loads(Path(line.split()[1]).read_bytes()))
                return
            reader = readers[fd]
            data = reader.sock.recv(262144)
            if data:
                reader.feed(data, now)
            else:
                poll.unregister(fd)


def report(readers: list[Reader], acks: dict[str, Any]) -> None:
    """One JSON line: each stream's frame count; whether every sampled stream got exactly
    the acknowledged events, in order; latency percentiles (sampled streams, measured
    window: acks["window"] maps event id -> when its append was acknowledged)."""
    window = {int(event_id): at for event_id, at in acks["window"].items()}
    every = acks["all"]
    latencies: list[float] = []
    exact = 0
    for r in (r for r in readers if r.sampled):
        exact += list(r.ids) == every
        for event_id, received in zip(r.ids, r.received, strict=True):
            at = window.get(event_id)
            if at is not None:
                latencies.append(received - at)
    latencies.sort()

    def percentile(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    doc = {
        "counts": [r.frames for r in readers],
        "sampled": sum(r.sampled for r in readers),
        "exact": exact,
        "latencies": len(latencies),
        "p50_ms": percentile(0.50) if latencies else 0.0,
        "p99_ms": percentile(0.99) if latencies else 0.0,
        "p999_ms": percentile(0.999) if latencies else 0.0,
        "max_ms": 1000 * latencies[-1] if latencies else 0.0,
    }
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")
    sys.stdout.flush()


def main() -> None:
    subscribe(sys.argv[1], int(sys.argv[2]))


if __name__ == "__main__":
    main()
