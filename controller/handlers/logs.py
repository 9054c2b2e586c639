"""App logs: GET /apps/{app}/log as newline-delimited JSON or SSE (Flynn: controller/app.go
appLog, proxied to logaggregator; here served from the in-process log store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from applog.store import LINES_PER_APP, LogLine, LogQuery
from commands.errors import ValidationError
from controller import keys
from controller.handlers.common import path_app
from controller.limits import claim_stream_slot
from controller.sse import data_frame, open_stream, pump

EOF_FRAME = data_frame(b'{"event":"eof"}')


def log_query(request: web.Request) -> tuple[int | None, bool, LogQuery]:
    """lines (0..10000; 0 or absent = all buffered), follow, job_id, process_type."""
    raw = request.query.get("lines", "")
    try:
        lines = int(raw) if raw else None
    except ValueError:
        raise ValidationError("lines", "is invalid") from None  # Flynn answers a 500 here
    if lines is not None and not 0 <= lines <= LINES_PER_APP:
        raise ValidationError("lines", f"must be between 0 and {LINES_PER_APP}")
    types = request.query.getall("process_type", [])
    query = LogQuery(
        job_id=request.query.get("job_id") or None,
        # The last value wins; an empty one means one-off jobs (no type), as in Flynn.
        process_type=types[-1] if types else None,
    )
    return lines or None, request.query.get("follow") == "true", query


async def app_log(request: web.Request) -> web.StreamResponse:
    app = path_app(request)
    lines, follow, query = log_query(request)
    logs = request.app[keys.LOG_STORE]
    if follow and lines is None:
        backlog: list[LogLine] = []
        position = logs.recent(app.id, 0, query)[1]  # only new lines
    else:
        backlog, position = logs.recent(app.id, lines, query)
    sse = "text/event-stream" in request.headers.get("Accept", "")

    async def lines_out() -> AsyncIterator[LogLine]:
        for line in backlog:
            yield line
        if follow:
            async for line in logs.follow(app.id, position, query):
                yield line

    if sse:
        return await _stream_sse(request, lines_out(), follow)
    return await _stream_ndjson(request, lines_out())


async def _stream_sse(
    request: web.Request, lines: AsyncIterator[LogLine], follow: bool
) -> web.StreamResponse:
    response = await open_stream(request)

    async def frames() -> AsyncIterator[bytes]:
        async for line in lines:
            yield data_frame(orjson.dumps({"event": "message", "data": line.to_json()}))
        yield EOF_FRAME

    await pump(response, frames())
    return response


async def _stream_ndjson(request: web.Request, lines: AsyncIterator[LogLine]) -> web.StreamResponse:
    claim_stream_slot(request)  # a followed log never ends: it counts as a stream
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)  # headers go out at once, as Flynn flushes them
    async for line in lines:
        await response.write(orjson.dumps(line.to_json()) + b"\n")
    await response.write_eof()
    return response
