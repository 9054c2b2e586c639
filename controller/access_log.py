"""Every request's end: counted for the metrics and written to the access log (one line per
request, its key redacted); and the service's logging set up (service/log_output.py)."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from time import perf_counter
from typing import ClassVar, cast
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from controller import keys
from service.log_format import MIN_HIDDEN_KEY, REDACTED, escape, hide_keys
from service.log_output import LogOutput, set_up
from service.metrics.requests import UNMATCHED, RequestStats

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


#: When the request reached the service's middleware (perf_counter): its duration is
#: measured from there, to the microsecond (aiohttp's own measure is the event loop's
#: clock, which uvloop keeps in whole milliseconds).
STARTED = web.RequestKey("evenflow_started", float)


def request_identity(request: web.BaseRequest) -> tuple[str | None, str | None]:
    """The request's id (taken or made by the middleware) and, once its key is known, the
    key's name (never the key), for its log line: the one place that reads them."""
    principal = request.get(keys.PRINCIPAL)
    return request.get(keys.REQUEST_ID), None if principal is None else principal.name


def route_of(request: web.BaseRequest) -> str:
    """The route template a request matched (never its path: labels must stay few)."""
    if not isinstance(request, web.Request):  # refused before routing (a malformed head)
        return UNMATCHED
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


class AccessLogger(AbstractAccessLogger):
    """Every request ends here: counted for the metrics (`stats`), and, at INFO, the access
    log's line `remote "METHOD target" status bytes duration`, the target redacted
    (`redact`), with no key of `secrets` in it, and escaped. Through `output` (the
    service's LogOutput) when there is one, else as a record of the `aiohttp.access`
    logger."""

    secrets: ClassVar[tuple[str, ...]] = ()
    stats: ClassVar[RequestStats | None] = None
    output: ClassVar[LogOutput | None] = None

    @classmethod
    def hiding(cls, secrets: Iterable[str]) -> type[AccessLogger]:
        """An access logger that also keeps these keys out of the log wherever they are
        (aiohttp makes one per connection from the class: it cannot be given them)."""
        return cls.serving(secrets, None, None)

    @classmethod
    def serving(
        cls, secrets: Iterable[str], stats: RequestStats | None, output: LogOutput | None
    ) -> type[AccessLogger]:
        """An access logger hiding these keys, counting into `stats`, writing to `output`."""
        attributes = {"secrets": tuple(secrets), "stats": stats, "output": output}
        return cast(type[AccessLogger], type(cls.__name__, (cls,), attributes))

    _remote: str | None = None

    @property
    def enabled(self) -> bool:
        # Read once per connection by aiohttp; below INFO, only the counting is done.
        return self.stats is not None or self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        started = request.get(STARTED)
        seconds = time if started is None else perf_counter() - started
        route = route_of(request)
        if self.stats is not None:
            self.stats.observe(route, request.method, response.status, seconds)
        if not self.logger.isEnabledFor(logging.INFO):
            return
        target = redact(request.raw_path)
        if self.secrets:
            target = hide_keys_in_target(target, self.secrets)
        request_id, actor = request_identity(request)
        remote = self._remote
        if remote is None:  # one logger per connection: its peer's address, asked once
            remote = self._remote = request.remote
        status, length = response.status, response.body_length
        line = f'{remote} "{request.method} {target}" {status} {length} {seconds * 1000:.3f}ms'
        if request_id is not None:
            line += f" request_id={request_id}"
        output = self.output
        if output is None:
            self.logger.info("%s", escape(line))
        elif not output.json:
            output.text(line)
        else:
            output.document(line, {"request_id": request_id, "actor": actor, "remote": remote,
                                   "method": request.method, "path": target, "route": route,
                                   "status": status, "bytes": length,
                                   "duration_us": round(seconds * 1e6)})  # fmt: skip


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


def setup_logging(level: str, log_format: str = "text") -> None:
    """The service's logging: LogOutput on stderr (text or JSON lines), malformed requests
    as one INFO line."""
    set_up(level, log_format == "json", [("aiohttp.server", BadRequestFilter())])
