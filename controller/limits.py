"""Request limits: what a body may look like, how many streams may be open, and how many
file descriptors the process may use. Each limit answers a clear 4xx/503 with Flynn's error
document instead of failing later, deeper in the service.

* Bodies (see `decode_body`): `Content-Type` must name `application/json` (as Flynn HEAD
  checks), the JSON must be nested at most `MAX_JSON_DEPTH` levels (deeper documents cannot be
  encoded back into the log), no object may repeat a key (which value would win is a guess
  the client should not leave to us) and no string may hold NUL (PostgreSQL text cannot).
  The size limit is aiohttp's `client_max_size` (413); a body announced larger is refused
  before it is read (middlewares.too_big). A body must arrive within `Settings.body_timeout`
  of the handler asking for it (`read_body`: 408).
* Streams: at most `Settings.max_streams` streams (event, formation and log streams) open
  at once; one more is a 503 `service_unavailable` with `retry: true`.
* File descriptors: the soft RLIMIT_NOFILE is raised to the hard limit at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import resource
from collections.abc import AsyncIterator
from typing import Any

import attrs
import orjson
from aiohttp import web

from commands.errors import JSONSyntaxError, UnavailableError, ValidationError
from controller import keys
from controller.endpoints import endpoint
from controller.errors import RequestTimeoutError

logger = logging.getLogger(__name__)

#: Deepest nesting of arrays and objects a body may have. Flynn's bodies need about 8.
MAX_JSON_DEPTH = 64
#: File descriptors kept out of the streams' share: the database pool, the log listener,
#: provider calls, the local host's job logs and ordinary requests.
FD_RESERVE = 512
CONTENT_TYPE_MESSAGE = "Content-Type must be application/json"


def _encoder_depth_limit() -> int:
    """The deepest nesting orjson encodes (254 in orjson 3.x), found once by trying."""
    low, high = 1, 4096
    while low < high:  # the largest depth that encodes
        middle = (low + high + 1) // 2
        try:
            orjson.dumps(_nested(0, middle))
        except orjson.JSONEncodeError:
            high = middle - 1
        else:
            low = middle
    return low


def _nested(doc: Any, levels: int) -> Any:
    for _ in range(levels):
        doc = [doc]
    return doc


#: Arrays wrapped around a body before encoding it: orjson then refuses exactly the bodies
#: nested deeper than MAX_JSON_DEPTH, in C, in the same pass as the duplicate-key count.
_WRAP = _encoder_depth_limit() - MAX_JSON_DEPTH
#: `\u0000` as an escape (an even number of backslashes before it), not the text "\u0000".
_NUL_ESCAPE = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")
# An escaped colon decodes to ":" without being one in the text: the counts cannot be trusted.
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")


# -- bodies ------------------------------------------------------------------------------


def check_content_type(request: web.Request) -> None:
    """A body endpoint's Content-Type must contain application/json (Flynn HEAD)."""
    if "application/json" not in request.headers.get("Content-Type", "").lower():
        raise ValidationError("", CONTENT_TYPE_MESSAGE)


async def read_body(request: web.Request) -> bytes:
    """The request's body, which must arrive within BODY_TIMEOUT (a client trickling it
    would otherwise hold the request, and its connection, for as long as it likes)."""
    if request.content.is_eof():  # all of it came with the head: nothing to wait for
        return await request.read()
    seconds = request.app[keys.SETTINGS].body_timeout
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body did not arrive within {seconds:g}s (BODY_TIMEOUT)"
        ) from None


def decode_body(body: bytes) -> Any:
    """`body` decoded: syntax_error if it is not JSON, validation_error if it holds NUL,
    nests deeper than MAX_JSON_DEPTH or repeats a key in an object.

    Duplicate keys are found without a second parse in the common case: every key in the
    text is followed by exactly one `:` outside strings, so the text has as many colons as
    the decoded document has keys plus colons inside its strings, unless a key was
    repeated (orjson keeps only the last one). Re-encoding the document (orjson, in C)
    and comparing colon counts detects exactly that; only then, or when the text escapes
    a colon, does the slow stdlib parse run, to name the key.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JSONSyntaxError() from None
    escapes = b"\\u00" in body  # one scan: most bodies escape nothing this way
    if escapes and _NUL_ESCAPE.search(body):
        # PostgreSQL text cannot hold NUL: such a string would be logged, then break the
        # SQL read model that reads it (and Flynn answers it with a 500).
        raise ValidationError("", "JSON strings may not contain the NUL character (\\u0000)")
    colons = body.count(b":")
    # Fewer brackets than the limit: it cannot be too deep (counting costs more than the
    # check itself in a large body).
    deep = len(body) > 65536 or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    if colons < 2 and not deep:
        return doc  # at most one key: nothing to repeat
    try:
        encoded = orjson.dumps(_nested(doc, _WRAP) if deep else doc)
    except orjson.JSONEncodeError:
        raise ValidationError(
            "", f"JSON input is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    if encoded.count(b":") != colons or (escapes and _ESCAPED_COLON.search(body)):
        _refuse_duplicate_keys(body)
    return doc


def _refuse_duplicate_keys(body: bytes) -> None:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key, value in items:
            if key in doc:
                raise ValidationError("", f'JSON object has the key "{key}" more than once')
            doc[key] = value
        return doc

    json.loads(body, object_pairs_hook=pairs)


# -- streams -------------------------------------------------------------------------------


@attrs.define
class StreamSlots:
    """The requests holding a stream slot now, and how many may."""

    limit: int
    holders: dict[int, web.Request] = attrs.field(factory=dict)  # id(request) -> request

    def claim(self, request: web.Request) -> bool:
        if id(request) in self.holders:
            return True
        if len(self.holders) >= self.limit:
            # A stream whose client went away ends at its next write (a keep-alive at the
            # latest); its connection is closed already, so its slot is free now.
            self.holders = {
                key: held
                for key, held in self.holders.items()
                if held.transport is not None and not held.transport.is_closing()
            }
        if len(self.holders) >= self.limit:
            return False
        self.holders[id(request)] = request
        return True

    def release(self, request: web.Request) -> None:
        self.holders.pop(id(request), None)


STREAM_SLOTS = web.AppKey("stream_slots", StreamSlots)


def claim_stream_slot(request: web.Request) -> None:
    """Take a stream slot for `request`, or refuse it with a 503; call before the stream's
    headers are sent (sse.open_stream does). The slot is given back when the handler ends
    (middlewares.edge, for the routes whose row says they stream), or when its client is
    found gone at the limit."""
    url = endpoint(request)
    if not url.streams:
        raise LookupError(f"{url.method} {url.path} is no stream (see controller/urls.py)")
    slots = request.app[STREAM_SLOTS]
    if not slots.claim(request):
        raise UnavailableError(f"too many open streams ({slots.limit}, MAX_STREAMS); retry later")


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Linux caps "unlimited" at fs.nr_open, 2**20 by default.
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return target
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def limits_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: raise the fd limit, and fit the stream cap under it."""
    fds = raise_fd_limit()
    wanted = app[keys.SETTINGS].max_streams
    limit = max(0, min(wanted, fds - FD_RESERVE))
    if limit < wanted:
        logger.warning(
            "MAX_STREAMS=%d lowered to %d: RLIMIT_NOFILE is %d (%d kept for other uses)",
            wanted,
            limit,
            fds,
            FD_RESERVE,
        )
    app[STREAM_SLOTS] = StreamSlots(limit)
    yield
