"""Server-sent events in Flynn's framing (pkg/sse): `data:` frames, a `:` keep-alive after
30 s of silence, `event: error` before closing on a fatal error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from commands.errors import ValidationError
from controller import keys
from eventstore.codec import envelope
from eventstore.record import EventFilter, RecordedEvent

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 30.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def data_frame(payload: bytes, event_id: int | None = None) -> bytes:
    """One message. Payloads are compact JSON, so a single `data:` line is enough."""
    if event_id is None:
        return b"data: " + payload + b"\n\n"
    return b"id: %d\ndata: %s\n\n" % (event_id, payload)


def error_frame(message: str) -> bytes:
    return b"event: error\ndata: " + message.replace("\n", " ").encode() + b"\n\n"


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the stream's headers now: clients wait for them before acting (Flynn's CLI)."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    return response


async def pump(
    response: web.StreamResponse,
    frames: AsyncIterator[bytes],
    keepalive: float = KEEPALIVE_SECONDS,
) -> None:
    """Write every frame of `frames`, and `:` after `keepalive` seconds without one.

    Ends when `frames` ends. A failure of the source is reported as an error frame.
    """
    upcoming: asyncio.Future[bytes] | None = None
    try:
        while True:
            # Waiting on a task, not wait_for: a keep-alive must not cancel the source.
            upcoming = upcoming or asyncio.ensure_future(anext(frames))
            done, _ = await asyncio.wait({upcoming}, timeout=keepalive)
            if not done:
                await response.write(b":\n")
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
    if value < 0:
        raise ValidationError("Last-Event-Id", "is invalid")
    return value


async def stream_events(request: web.Request, filter: EventFilter) -> web.StreamResponse:
    store = request.app[keys.STORE]
    count_raw = request.query.get("count")
    try:
        count = int(count_raw) if count_raw else None
    except ValueError:
        raise ValidationError("count", "is invalid") from None
    resume = resume_position(request)
    past = request.query.get("past") == "true"
    # The start position is fixed before any byte is sent: nothing committed after the
    # response starts can be missed.
    start = await store.last_id()
    after = start
    if past or resume:
        after = resume or 0
        if count:
            recent = [
                r
                async for r in store.read_backward(
                    since_id=after, before_id=start + 1, count=count, filter=filter
                )
            ]
            after = recent[-1].id - 1 if recent else start
    response = await open_stream(request)

    async def frames() -> AsyncIterator[bytes]:
        record: RecordedEvent
        async for record in store.subscribe(after=after, filter=filter):
            yield data_frame(envelope(record), record.id)

    await pump(response, frames())
    return response
