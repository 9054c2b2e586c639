"""The service log's one writer: records at once, access lines in batches.

A record (start-up, a warning, an error) is formatted by the logging module and written
at once, after the access lines gathered before it (the order stays that of the events).
An access line skips the logging module: it is built from what the request left
(controller/access_log.py), with a timestamp computed once per second, and gathered; the
lines are written in one `write` per batch — when FLUSH_LINES are waiting, FLUSH_AFTER
seconds after the first, before any record, and when the process exits. A line per
request through the logging module (a record, a formatter, a locked write and flush each)
cost a large share of a small request's time (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

import orjson

from service.log_format import JsonFormatter, LogFormatter, escape

#: Access lines gathered before they are written at once.
FLUSH_LINES = 256
#: Seconds an access line may wait to be written.
FLUSH_AFTER = 0.2
ACCESS_LOGGER = "aiohttp.access"


class LogOutput(logging.Handler):
    """The handler of the service's root logger (see the module's docstring)."""

    def __init__(self, stream: TextIO | None = None, *, json: bool = False) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.json = json
        self.setFormatter(JsonFormatter() if json else LogFormatter())
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1  # the second _stamp is for
        self._stamp = ""

    # -- records -----------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            with self.lock:  # type: ignore[union-attr]
                self._write_lines()
                self.stream.write(text + "\n")
                self.stream.flush()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_lines()
            self.stream.flush()

    def _write_lines(self) -> None:
        lines, self._lines = self._lines, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if lines:
            self.stream.write("".join(lines))

    # -- access lines ------------------------------------------------------------------

    def text(self, message: str) -> None:
        """An access line in the text format."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        self._gather(f"{self._stamp},{millis:03d} INFO {ACCESS_LOGGER}: {escape(message)}\n")

    def document(self, message: str, fields: dict[str, object]) -> None:
        """An access line as JSON: time, level, logger, `message`, then `fields`."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        stamp = f"{self._stamp}.{int((now - second) * 1e6):06d}Z"
        head: dict[str, object] = {"time": stamp, "level": "INFO", "logger": ACCESS_LOGGER}
        head["message"] = message
        head.update(fields)
        self._gather(orjson.dumps(head).decode() + "\n")

    def _gather(self, line: str) -> None:
        lines = self._lines
        lines.append(line)
        if len(lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to flush later: now
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_AFTER, self._flush_later)

    def _flush_later(self) -> None:
        self._timer = None
        self.flush()


def log_output() -> LogOutput | None:
    """The root logger's LogOutput, when the service's logging was set up."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogOutput):
            return handler
    return None


def set_up(level: str, json: bool, filters: Iterable[tuple[str, logging.Filter]] = ()) -> None:
    """The service's logging: LogOutput on stderr, at `level`."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(LogOutput(json=json))
    root.setLevel(level.upper())
    for name, log_filter in filters:
        logging.getLogger(name).addFilter(log_filter)
