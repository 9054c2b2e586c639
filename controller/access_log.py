"""Every request's end, as the `edge` middleware tells it: counted for the metrics and
written to the access log (one line per request, its key redacted); and the service's
logging set up (service/log_output.py)."""

from __future__ import annotations

import logging
import re
import time as time_module
import unicodedata
from collections.abc import Iterable, Sequence
from time import perf_counter, time
from urllib.parse import unquote_plus

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from controller import keys
from service.log_format import MIN_HIDDEN_KEY, REDACTED, escape, hide_keys
from service.log_output import ACCESS_LOGGER, LogOutput, set_up
from service.metrics.requests import RequestStats

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


def request_identity(request: web.BaseRequest) -> tuple[str | None, str | None]:
    """The request's id (taken or made by the middleware) and, once its key is known, the
    key's name (never the key), for its log line: the one place that reads them."""
    principal = request.get(keys.PRINCIPAL)
    return request.get(keys.REQUEST_ID), None if principal is None else principal.name


#: The timestamps' seconds: local time in the text format, UTC in JSON lines.
TEXT_STAMP, JSON_STAMP = "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"
#: What the access log keeps of a request until its line is written: (perf_counter time,
#: peer, method, target, request id, actor, route, seconds, status, answer). The answer for
#: its length once sent: a plain answer's bytes are written after the middleware returns.
Entry = tuple[
    float, str | None, str, str, str | None, str | None, str, float, int, web.StreamResponse | None
]


class RequestLog:
    """Every request's end, as the middleware (controller/middlewares.py) tells it: counted
    for the metrics (`stats`), and, at INFO, kept for its access-log line. The lines are
    made when written, a batch at a time (`render`): `remote "METHOD target" status bytes
    duration request_id=…`, the target redacted (`redact`), with no key of `secrets` in it,
    and escaped; or the same as JSON. Through `output` (the service's LogOutput) when there
    is one, else as records of the `aiohttp.access` logger."""

    __slots__ = ("_hidden", "_logger", "_secrets", "output", "stats")

    def __init__(
        self,
        stats: RequestStats | None = None,
        secrets: Iterable[str] = (),
        output: LogOutput | None = None,
    ) -> None:
        self.stats = stats or RequestStats()
        self.secrets = tuple(secrets)
        self.output = output
        self._logger = logging.getLogger(ACCESS_LOGGER)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    @secrets.setter
    def secrets(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets
        self._hidden = tuple(s for s in secrets if len(s) >= MIN_HIDDEN_KEY)

    def ended(
        self,
        request: web.Request,
        route: str,
        status: int,
        response: web.StreamResponse | None,
        started: float,
    ) -> None:
        """`request` (of the URL table's `route`) was answered with `status` (`response`,
        unless an HTTPException carried it); `started` is its perf_counter at routing."""
        now = perf_counter()
        method = request.method
        self.stats.observe(route, method, status, now - started)
        if not self._logger.isEnabledFor(logging.INFO):
            return
        request_id, actor = request_identity(request)
        entry: Entry = (now, request.remote, method, request.raw_path, request_id, actor,
                        route, now - started, status, response)  # fmt: skip
        if self.output is None:
            self._logger.info("%s", self._message(entry))
        else:
            self.output.gather(entry, self.render)

    def render(self, entries: Sequence[Entry], json: bool) -> str:
        """The lines of `entries`, in the text format or as JSON (one loop: a batch's lines
        cost the service's requests their time)."""
        offset = time() - perf_counter()  # the entries' times are perf_counter's
        second, stamp = -1, ""
        hidden, target_of = self._hidden, self._target
        lines: list[str] = []
        documents: list[bytes] = []
        for entry in entries:
            now, remote, method, target, request_id, actor, route, seconds, status, answer = entry
            when = now + offset
            if int(when) != second:
                second = int(when)
                moment = time_module.gmtime(second) if json else time_module.localtime(second)
                stamp = time_module.strftime(JSON_STAMP if json else TEXT_STAMP, moment)
            if _needs_care(target, hidden):
                target = target_of(target)
            length = 0 if answer is None else answer.body_length
            if not json:
                tail = "" if request_id is None else f" request_id={request_id}"
                lines.append(f"{stamp},{int((when - second) * 1e3):03d} INFO {ACCESS_LOGGER}: "
                             f'{remote} "{method} {target}" {status} {length} '
                             f"{seconds * 1e3:.3f}ms{tail}\n")  # fmt: skip
                continue
            documents.append(orjson.dumps({
                "time": f"{stamp}.{int((when - second) * 1e6):06d}Z", "level": "INFO",
                "logger": ACCESS_LOGGER, "message": f"{method} {target} {status}",
                "request_id": request_id, "actor": actor, "remote": remote, "method": method,
                "path": target, "route": route, "status": status, "bytes": length,
                "duration_us": round(seconds * 1e6),
            }))  # fmt: skip
        if json:
            return b"\n".join(documents).decode() + "\n" if documents else ""
        return "".join(lines)

    def _target(self, raw_path: str) -> str:
        """A target fit for the log: redacted, no key in it, escaped."""
        target = redact(raw_path)
        return escape(hide_keys_in_target(target, self._secrets) if self._secrets else target)

    def _message(self, entry: Entry) -> str:
        """An entry's line without its timestamp (a record's message)."""
        line = self.render([entry], False)
        return line[line.index(f"{ACCESS_LOGGER}: ") + len(ACCESS_LOGGER) + 2 : -1]


def _needs_care(target: str, hidden: tuple[str, ...]) -> bool:
    """Whether a target may hold a parameter, an escape, a character to escape or a key
    (`RequestLog._target`); the usual one is logged as it is. A few `in`s: a regular
    expression searching for the same takes several times longer."""
    if "?" in target or "%" in target or "+" in target or ";" in target or "#" in target:
        return True
    if not (target.isascii() and target.isprintable()):
        return True
    for secret in hidden:  # noqa: SIM110 (a generator is slower, once per request)
        if secret in target:
            return True
    return False


#: The service's RequestLog (its counts are read by the metrics: controller/metrics.py).
REQUEST_LOG = web.AppKey("request_log", RequestLog)


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
