"""Log lines from requests: the access log (one line per request, its key redacted), and
the service's logging set up with the formatter of service/log_format.py."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import ClassVar, cast
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from service.log_format import MIN_HIDDEN_KEY, REDACTED, LogFormatter, escape, hide_keys

#: Where a request target's parameters begin and end: `;` and `#` too, though the server
#: splits only on `&`, so that a key sent in a form it does not read is not logged either.
_SEPARATORS = re.compile(r"([?&;#])")
_NOT_ALNUM = re.compile(r"[\W_]+")


def _decoded(text: str) -> str:
    """`text` as a reader of the query might see it: percent-decoded (repeatedly, so that a
    twice-encoded name counts), compatibility-normalized, case-folded."""
    for _ in range(4):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return unicodedata.normalize("NFKC", text).casefold()


def _mentions_key(parameter: str) -> bool:
    return "key" in _NOT_ALNUM.sub("", _decoded(parameter))


def redact(target: str) -> str:
    """A request target with the value of every parameter that mentions `key` replaced by
    [REDACTED]: `key=`, `KEY=`, `%6Bey=`, `key[]=`, `key%00=`, `;key=`, `x=1%26key%3D…`.

    Generous on purpose: a parameter of this API never needs `key` in its name or value to
    be read in the log, and a key must never be."""
    if "?" not in target and "#" not in target and ";" not in target:
        return target
    pieces = _SEPARATORS.split(target)
    for i in range(2, len(pieces), 2):  # pieces[0] is the path; odd ones are separators
        piece = pieces[i]
        if piece and _mentions_key(piece):
            name, equals, _ = piece.partition("=")
            pieces[i] = f"{name}={REDACTED}" if equals else REDACTED
    return "".join(pieces)


def hide_keys_in_target(target: str, secrets: Iterable[str]) -> str:
    """A request target without any key in it, as sent or percent-encoded (wherever a
    client put it: the path, a parameter named otherwise)."""
    target = hide_keys(target, secrets)
    if "%" not in target and "+" not in target:
        return target
    hidden = [s.casefold() for s in secrets if len(s) >= MIN_HIDDEN_KEY]
    if not any(secret in _decoded(target) for secret in hidden):
        return target
    path = target.partition("?")[0]
    if any(secret in _decoded(path) for secret in hidden):
        return REDACTED
    return f"{path}?{REDACTED}"


class AccessLogger(AbstractAccessLogger):
    """The access log: `remote "METHOD target" status bytes time`, the target redacted
    (`redact`), with no key of `secrets` in it, and escaped."""

    secrets: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def hiding(cls, secrets: Iterable[str]) -> type[AccessLogger]:
        """An access logger that also keeps these keys out of the log wherever they are
        (aiohttp makes one per connection from the class: it cannot be given them)."""
        return cast(type[AccessLogger], type(cls.__name__, (cls,), {"secrets": tuple(secrets)}))

    @property
    def enabled(self) -> bool:
        # Read once per connection by aiohttp: below INFO nothing is formatted or timed
        # (redact and the clock cost 6 % of a small GET).
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        target = redact(request.raw_path)
        if self.secrets:
            target = hide_keys_in_target(target, self.secrets)
        line = f'{request.remote} "{request.method} {target}"'
        self.logger.info(
            "%s %d %d %.2fms", escape(line), response.status, response.body_length, time * 1000
        )


class BadRequestFilter(logging.Filter):
    """aiohttp logs each malformed request as an ERROR with a traceback that quotes the
    request's first line (a key in it included): the client's mistake, not the service's.
    It becomes one INFO line naming the client and the kind of error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = (
            "bad request from %s: %s (%d)",
            (
                client,
                type(error).__name__,
                error.code,
            ),
        )
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(record.levelno)


def setup_logging(level: str) -> None:
    """The service's logging: LogFormatter on stderr, malformed requests as one INFO line."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("aiohttp.server").addFilter(BadRequestFilter())
