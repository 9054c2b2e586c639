"""Server-sent events in Flynn's framing (pkg/sse): `data:` frames, a `:` keep-alive after
30 s of silence, `event: error` before closing on a fatal error.

Not aiohttp-sse: its keep-alive (`: ping` and a blank line, on a fixed period, neither
replaceable nor optional) ends the stream of Flynn's Go decoder; and the event fan-out frames
an event once for all its subscribers, where aiohttp-sse would frame it again in every
response (docs/architecture.md, "Streams").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from commands.errors import ValidationError
from controller.limits import claim_stream_slot
from domain.codec import envelope
from eventstore.record import RecordedEvent

logger = logging.getLogger(__name__)

#: Seconds of silence before a `:` keep-alive (Flynn: pkg/sse). Read at call time, so that
#: tests may patch it.
KEEPALIVE_SECONDS = 30.0
KEEPALIVE_FRAME = b":\n"
#: A TransportWriter writes only while its transport buffers less than this (as aiohttp).
DIRECT_LIMIT = 64 * 1024
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

# Set when the application shuts down: every open stream then ends (see end_streams).
_closing: weakref.WeakKeyDictionary[web.Application, asyncio.Event] = weakref.WeakKeyDictionary()
_stream_closing: weakref.WeakKeyDictionary[web.StreamResponse, asyncio.Event] = (
    weakref.WeakKeyDictionary()
)


def data_frame(payload: bytes, event_id: int | None = None) -> bytes:
    """One message. Payloads are compact JSON, so a single `data:` line is enough."""
    if event_id is None:
        return b"data: " + payload + b"\n\n"
    return b"id: %d\ndata: %s\n\n" % (event_id, payload)


def event_frame(record: RecordedEvent) -> bytes:
    """An event's frame: its id line, then Flynn's envelope as the data line."""
    return data_frame(envelope(record), record.id)


def error_frame(message: str) -> bytes:
    return b"event: error\ndata: " + message.replace("\n", " ").encode() + b"\n\n"


class TransportWriter:
    """Writes a stream's bytes straight to its transport, framed as aiohttp frames the body.

    Why: for a fan-out to many clients, waking one task per client per event costs as much
    as the write itself. While a client's task waits (and so is not writing), another may
    write for it, in order. Only while the transport has room: a backed-up client is left
    to its task, whose writes wait for the transport to drain.
    """

    __slots__ = ("chunked", "transport")

    def __init__(self, transport: asyncio.Transport, chunked: bool) -> None:
        self.transport = transport
        self.chunked = chunked  # HTTP/1.1 chunked transfer coding, as the response uses

    def has_room(self) -> bool:
        transport = self.transport
        return not transport.is_closing() and transport.get_write_buffer_size() < DIRECT_LIMIT

    def write(self, chunk: bytes) -> None:
        """Write `chunk` (not empty: an empty chunk would end a chunked body)."""
        self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.chunked else chunk)


def keepalive_seconds() -> float:
    return KEEPALIVE_SECONDS


def closing(app: web.Application) -> asyncio.Event:
    """The application's shutdown signal for streams."""
    event = _closing.get(app)
    if event is None:
        event = _closing[app] = asyncio.Event()
    return event


def end_streams(app: web.Application) -> None:
    """Make every stream of `app` that runs through `pump` end (on shutdown)."""
    closing(app).set()


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the stream's headers now: clients wait for them before acting (Flynn's CLI).

    Past MAX_STREAMS open streams, a 503 instead (raised before any byte is sent).
    """
    claim_stream_slot(request)
    response = web.StreamResponse(headers=SSE_HEADERS)
    if request.version >= (1, 1):
        # What aiohttp does anyway for an HTTP/1.1 body of unknown length; said explicitly,
        # because the broadcaster frames chunks itself when it writes to the transport.
        response.enable_chunked_encoding()
    await response.prepare(request)
    _stream_closing[response] = closing(request.app)
    return response


async def pump(
    response: web.StreamResponse,
    frames: AsyncIterator[bytes],
    keepalive: float | None = None,
) -> None:
    """Write every frame of `frames`, and `:` after `keepalive` seconds without one.

    Ends when `frames` ends or the application shuts down. A failure of the source is
    reported as an error frame.
    """
    interval = KEEPALIVE_SECONDS if keepalive is None else keepalive
    shutdown = _stream_closing.get(response) or asyncio.Event()
    stop = asyncio.ensure_future(shutdown.wait())
    upcoming: asyncio.Future[bytes] | None = None
    try:
        while True:
            # Waiting on a task, not wait_for: a keep-alive must not cancel the source.
            upcoming = upcoming or asyncio.ensure_future(anext(frames))
            waiting: set[asyncio.Future[Any]] = {upcoming, stop}
            done, _ = await asyncio.wait(
                waiting, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            if stop in done:
                return
            if not done:
                await response.write(KEEPALIVE_FRAME)
                continue
            try:
                chunk = upcoming.result()
            except StopAsyncIteration:
                upcoming = None
                return
            except Exception as exc:
                upcoming = None
                logger.exception("event stream source failed")
                await response.write(error_frame(f"stream failed: {exc}"))
                return
            upcoming = None
            await response.write(chunk)
    finally:
        stop.cancel()
        if upcoming is not None:
            upcoming.cancel()
        with contextlib.suppress(Exception):
            await frames.aclose()  # type: ignore[attr-defined]


def resume_position(request: web.Request) -> int | None:
    """Last-Event-Id (header, or query parameter for EventSource's first request)."""
    raw = request.headers.get("Last-Event-Id") or request.query.get("last_event_id")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError("Last-Event-Id", "is invalid") from None
    if not 0 <= value < 2**63:
        raise ValidationError("Last-Event-Id", "is invalid")
    return value
