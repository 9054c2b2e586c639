"""Middlewares: CORS (outermost), errors -> Flynn's documents, then authentication."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from commands.errors import DomainError, NotFoundError
from controller import keys
from controller.errors import describe, error_document

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Flynn: pkg/httphelper CORSAllowAll.
CORS_HEADERS = {
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, HEAD",
    "Access-Control-Allow-Headers": (
        "Auth-Key, Authorization, Accept, Content-Type, If-Match, If-None-Match, X-GRPC-Web, "
        "Last-Event-Id"
    ),
    "Access-Control-Expose-Headers": "ETag, Content-Disposition",
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


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if origin is None:
        return await handler(request)
    if request.method == "OPTIONS":  # a preflight: answered before authentication
        response = web.Response(status=200)
        _cors(response, origin)
        return response
    # Other responses get their CORS headers in add_cors_headers, as streams send their
    # headers before the handler returns.
    return await handler(request)


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


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    password = basic_password(request)
    if not password and request.path == "/ca-cert":
        return await handler(request)
    if not password and may_use_key_param(request):
        password = request.query.get("key", "")
    if key_matches(password, request.app[keys.SETTINGS].auth_keys):
        return await handler(request)
    return web.Response(status=401)  # Flynn: an empty body and no WWW-Authenticate
