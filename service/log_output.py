"""The service log's one writer: records at once, access lines in batches.

A record (start-up, a warning, an error) is formatted by the logging module and written
at once, after the access lines gathered before it (the order stays that of the events).
An access line skips the logging module: what the request left is gathered as it ends;
the lines are made a batch at a time (controller/access_log.py) and written in one
`write` — when FLUSH_LINES are waiting, FLUSH_AFTER seconds after the first, before any
record, and when the process exits. A line per
request through the logging module (a record, a formatter, a locked write and flush each)
cost a large share of a small request's time (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from service.log_format import JsonFormatter, LogFormatter

#: Access lines gathered before they are written at once.
FLUSH_LINES = 256
#: Seconds an access line may wait to be written.
FLUSH_AFTER = 0.2
ACCESS_LOGGER = "aiohttp.access"

#: Makes the lines of gathered entries (text, or JSON when told): once per batch.
Render = Callable[[Sequence[Any], bool], str]


class LogOutput(logging.Handler):
    """The handler of the service's root logger (see the module's docstring)."""

    def __init__(self, stream: TextIO | None = None, *, json: bool = False) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.json = json
        self.setFormatter(JsonFormatter() if json else LogFormatter())
        self._gathered: list[Any] = []
        self._render: Render | None = None
        self._timer: asyncio.TimerHandle | None = None

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
        gathered, self._gathered = self._gathered, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if gathered and self._render is not None:
            self.stream.write(self._render(gathered, self.json))

    # -- access lines ------------------------------------------------------------------

    def gather(self, entry: Any, render: Render) -> None:
        """An access line to write later: `render` makes the lines of a batch of entries."""
        self._render = render
        gathered = self._gathered
        gathered.append(entry)
        if len(gathered) >= FLUSH_LINES:
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
