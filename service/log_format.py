"""The service log's lines, which no request can forge a line in nor leak a key through."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[REDACTED]"
#: Keys shorter than this are not searched for in log lines: replacing every occurrence
#: of a very short string would garble the log (the parameters are still redacted).
MIN_HIDDEN_KEY = 8


def escape(text: str) -> str:
    """`text` with every non-printable character (line breaks, escape sequences, bidi
    controls) written as a Python escape: a logged value stays on its line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def hide_keys(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a key replaced."""
    for secret in secrets:
        if len(secret) >= MIN_HIDDEN_KEY and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class LogFormatter(logging.Formatter):
    """The service log's lines. A record's message has its control characters escaped, and
    the lines after its first (a traceback) are indented: only a record starts a line at
    the left margin. The keys in `secrets` are replaced wherever they appear."""

    def __init__(self, fmt: str = LOG_FORMAT, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        first, newline, rest = text.partition("\n")
        if newline:
            text = first + "".join("\n  " + escape(line) for line in rest.split("\n"))
        return hide_keys(text, self.secrets) if self.secrets else text


def hide_keys_in_logs(secrets: Iterable[str]) -> None:
    """From now on, the service log replaces these keys wherever they appear."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, LogFormatter | JsonFormatter):
            handler.formatter.secrets = tuple(secrets)


#: LOG_FORMAT's values: `text` lines as above, or one JSON object per line.
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, µs), level, logger, message, and the
    traceback as `error` when there is one. JSON escapes what could break the line; the
    keys in `secrets` are replaced wherever they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["error"] = record.exc_text
        text = orjson.dumps(document).decode()
        return hide_keys(text, self.secrets) if self.secrets else text


def iso_time(seconds: float) -> str:
    """A time as RFC 3339 in UTC, to the microsecond."""
    whole = int(seconds)
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{second}.{int((seconds - whole) * 1e6):06d}Z"
