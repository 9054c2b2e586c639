"""Middlewares: errors -> Flynn's documents (outermost), then CORS preflights and
authentication (one middleware: each layer costs a coroutine per request, and a small GET
spends about as much in the middlewares as in its handler)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from commands.errors import DomainError, NotFoundError, UnavailableError
from controller import keys
from controller.errors import describe, error_document
from eventstore.store import StoreUnavailableError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Flynn: pkg/httphelper CORSAllowAll.
CORS_HEADERS = {
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, HEAD",
    "Access-Control-Allow-Headers": (
        "Auth-Key, Authorization, Accept, Content-Type, If-Match, If-None-Match, X-GRPC-Web, "
        "Last-Event-Id, Evenflow-Event-Id"
    ),
    "Access-Control-Expose-Headers": "ETag, Content-Disposition, Evenflow-Event-Id",
    "Access-Control-Max-Age": "3600",
}

#: Paths anyone may GET without a key (Flynn: controller.go muxHandler). /ca-cert only
#: when no password at all is given; a wrong one is still refused.
OPEN_PATHS = frozenset({"/ping"})


def _cors(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    for name, value in CORS_HEADERS.items():
        response.headers.setdefault(name, value)


def preflight(request: web.Request) -> web.Response | None:
    """The answer to a CORS preflight (before authentication), None for other requests.

    Other responses get their CORS headers in add_cors_headers, as streams send their
    headers before the handler returns.
    """
    if request.method != "OPTIONS":
        return None
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    response = web.Response(status=200)
    _cors(response, origin)
    return response


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response to a browser request carries CORS headers."""
    origin = request.headers.get("Origin")
    if origin:
        _cors(response, origin)


def not_found_response() -> web.Response:
    """Flynn's not-found: a bare 404 with an empty body (its Go client relies on that)."""
    return web.Response(status=404)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFoundError:
        return not_found_response()
    except DomainError as error:
        status, body = describe(error)
        return web.Response(status=status, body=body, content_type="application/json")
    except StoreUnavailableError as error:  # a read of the log while the database is away
        status, body = describe(UnavailableError(str(error)))
        return web.Response(status=status, body=body, content_type="application/json")
    except web.HTTPNotFound:
        return web.Response(status=404, text="404 page not found")
    except web.HTTPRequestEntityTooLarge as error:
        body = error_document("request_body_too_big", error.text or "Request body too large")
        return web.Response(status=413, body=body, content_type="application/json")
    except web.HTTPMethodNotAllowed as error:
        return web.Response(
            status=405, text="Method Not Allowed", headers={"Allow": error.headers["Allow"]}
        )
    except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        body = error_document("unknown_error", "Something went wrong")
        return web.Response(status=500, body=body, content_type="application/json")


def basic_password(request: web.Request) -> str:
    """The Basic-auth password ("" when absent or malformed); the username is ignored."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def key_matches(candidate: str, auth_keys: tuple[str, ...]) -> bool:
    """Constant time in the candidate: every key is compared, none short-circuits."""
    given = candidate.encode()
    results = [hmac.compare_digest(given, key.encode()) for key in auth_keys]
    return bool(candidate) and any(results)


def may_use_key_param(request: web.Request) -> bool:
    # Flynn: ?key= only for event streams (browsers' EventSource cannot set headers) and
    # for /backup (a download link).
    return "text/event-stream" in request.headers.get("Accept", "") or request.path == "/backup"


#: Authorization headers that carried a valid key, by the keys they were checked against:
#: a client sends the same header with every request, and checking it (base64, one HMAC
#: comparison per key) costs a tenth of a small GET. A dict lookup reveals nothing about
#: the key (str hashes are keyed per process); failures are not remembered.
_ACCEPTED: dict[tuple[tuple[str, ...], str], None] = {}
_ACCEPTED_MAX = 1024


def authorized(request: web.Request) -> bool:
    """Whether the request may go on: an open path, or a valid key (Basic or ?key=)."""
    auth_keys = request.app[keys.SETTINGS].auth_keys
    header = request.headers.get("Authorization")
    if header is not None and (auth_keys, header) in _ACCEPTED:
        return True
    if request.path in OPEN_PATHS:
        return True
    from_header = password = basic_password(request)
    if not password and request.path == "/ca-cert":
        return True
    if not password and may_use_key_param(request):
        password = request.query.get("key", "")
    if not key_matches(password, auth_keys):
        return False
    if header is not None and from_header:
        if len(_ACCEPTED) >= _ACCEPTED_MAX:
            _ACCEPTED.clear()
        _ACCEPTED[(auth_keys, header)] = None
    return True


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS preflights, then authentication."""
    answer = preflight(request)
    if answer is not None:
        return answer
    if authorized(request):
        return await handler(request)
    return web.Response(status=401)  # Flynn: an empty body and no WWW-Authenticate
