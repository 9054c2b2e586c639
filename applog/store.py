"""A bounded per-app store of job output lines, readable as a backlog and followable live.

Flynn's log aggregator keeps the last 10,000 lines per app in memory; so does this store,
up to LOG_BYTES_PER_APP of them (lines can be long).
Lines are lossy by design (a follower that falls more than a buffer behind skips ahead),
and nothing here is durable: the event log holds the state, not the output.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

import attrs

from domain.timefmt import format_time

LINES_PER_APP = 10_000
#: Bytes of lines kept per app at most (a line's text, plus LINE_OVERHEAD for the rest).
LOG_BYTES_PER_APP = 16 * 1024 * 1024
LINE_OVERHEAD = 200


@attrs.frozen
class LogLine:
    app_id: str
    msg: str
    timestamp: datetime
    job_id: str = ""
    process_type: str = ""
    stream: str = "stdout"  # stdout | stderr | init
    host_id: str = ""
    source: str = "app"

    def to_json(self) -> dict[str, Any]:
        """Flynn's log message JSON (empty fields omitted)."""
        doc: dict[str, Any] = {
            "host_id": self.host_id,
            "job_id": self.job_id,
            "msg": self.msg,
            "process_type": self.process_type,
            "source": self.source,
            "stream": self.stream,
            "timestamp": format_time(self.timestamp),
        }
        return {key: value for key, value in doc.items() if value}


@attrs.frozen
class LogQuery:
    """Which lines a reader wants: one job, and/or one process type ("" = one-off jobs)."""

    job_id: str | None = None
    process_type: str | None = None

    def matches(self, line: LogLine) -> bool:
        return (self.job_id is None or line.job_id == self.job_id) and (
            self.process_type is None or line.process_type == self.process_type
        )


class LogStore(Protocol):
    def write(self, line: LogLine) -> None: ...

    def recent(self, app_id: str, count: int | None, query: LogQuery) -> tuple[list[LogLine], int]:
        """The last `count` matching lines (all buffered when None), and the position after them."""
        ...

    def follow(self, app_id: str, after: int, query: LogQuery) -> AsyncIterator[LogLine]:
        """Matching lines written after position `after`, as they come."""
        ...


class _AppBuffer:
    def __init__(self, size: int, max_bytes: int) -> None:
        self.lines: deque[LogLine] = deque()
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.written = 0  # position of the next line
        self.appended = asyncio.Event()

    def add(self, line: LogLine) -> None:
        self.lines.append(line)
        self.bytes += len(line.msg) + LINE_OVERHEAD
        while len(self.lines) > self.size or (self.bytes > self.max_bytes and len(self.lines) > 1):
            self.bytes -= len(self.lines.popleft().msg) + LINE_OVERHEAD
        self.written += 1


class MemoryLogStore:
    """The last LINES_PER_APP lines of each app (LOG_BYTES_PER_APP at most), in memory."""

    def __init__(
        self, lines_per_app: int = LINES_PER_APP, bytes_per_app: int = LOG_BYTES_PER_APP
    ) -> None:
        self._size = lines_per_app
        self._bytes = bytes_per_app
        self._apps: dict[str, _AppBuffer] = {}

    def _buffer(self, app_id: str) -> _AppBuffer:
        buffer = self._apps.get(app_id)
        if buffer is None:
            buffer = self._apps[app_id] = _AppBuffer(self._size, self._bytes)
        return buffer

    def write(self, line: LogLine) -> None:
        buffer = self._buffer(line.app_id)
        buffer.add(line)
        buffer.appended.set()
        buffer.appended = asyncio.Event()

    def recent(self, app_id: str, count: int | None, query: LogQuery) -> tuple[list[LogLine], int]:
        buffer = self._buffer(app_id)
        lines = [line for line in buffer.lines if query.matches(line)]
        return (lines if count is None else lines[-count:] if count else []), buffer.written

    def delete_app(self, app_id: str) -> None:
        self._apps.pop(app_id, None)

    async def follow(self, app_id: str, after: int, query: LogQuery) -> AsyncIterator[LogLine]:
        buffer = self._buffer(app_id)
        position = after
        while True:
            appended = buffer.appended
            oldest = buffer.written - len(buffer.lines)
            # A follower more than a buffer behind skips the lines that are gone.
            start = max(position, oldest)
            fresh = list(buffer.lines)[start - oldest :] if start < buffer.written else []
            position = buffer.written
            for line in fresh:
                if query.matches(line):
                    yield line
            if buffer.written == position:
                await appended.wait()
