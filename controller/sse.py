"""Server-sent events in Flynn's framing: `data:` frames, a `:` keep-alive, `event: error`."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from commands.errors import ValidationError
from controller import keys
from eventstore.codec import envelope
from eventstore.record import EventFilter, RecordedEvent

KEEPALIVE_SECONDS = 30.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def frame(record: RecordedEvent) -> bytes:
    """One event: an `id:` line (browsers resume with it; Flynn's clients ignore it), then data."""
    return b"id: %d\ndata: %s\n\n" % (record.id, envelope(record))


def resume_position(request: web.Request) -> int | None:
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
            recent = [r async for r in store.read_backward(since_id=after, before_id=start + 1, count=count, filter=filter)]
            after = recent[-1].id - 1 if recent else start
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    events = store.subscribe(after=after, filter=filter)
    upcoming: asyncio.Future[RecordedEvent] | None = None
    try:
        while True:
            # Waiting on a task, not wait_for: a timeout must not cancel the subscription.
            upcoming = upcoming or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({upcoming}, timeout=KEEPALIVE_SECONDS)
            if not done:
                await response.write(b":\n")
                continue
            record, upcoming = upcoming.result(), None
            await response.write(frame(record))
    finally:
        if upcoming is not None:
            upcoming.cancel()
        with contextlib.suppress(Exception):
            await events.aclose()
