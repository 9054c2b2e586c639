"""The one middleware every request passes, and the one hook every answer's headers pass.

`edge`, in this order: errors become Flynn's documents (it is outermost: nothing below it
raises past it), CORS preflights are answered, bodies announced too large refused, the key
checked, the request answered from a fold that holds every write acknowledged before it
(controller/consistency.py), and a stream's slot given back however its handler ends.
`edge_headers` gives every answer its CORS headers and its log position.

One middleware rather than one per concern: each layer costs a coroutine per request, and
what a request needs of its route (open? `?key=`? names an app? streams?) was worked out
from the URL table at start-up (controller/endpoints.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Middleware

from commands.errors import DomainError, NotFoundError, UnavailableError
from controller import keys
from controller.access_log import STARTED
from controller.consistency import CONSISTENCY, HEADER, consistently
from controller.cors import cors_headers, preflight
from controller.endpoints import UNROUTED, Access, Endpoint, Handler
from controller.errors import describe, error_document, error_response
from controller.limits import STREAM_SLOTS
from eventstore.store import StoreUnavailableError
from service.settings import Settings

logger = logging.getLogger(__name__)

Hook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def not_found_response() -> web.Response:
    """Flynn's not-found: a bare 404 with an empty body (its Go client relies on that)."""
    return web.Response(status=404)


def edge(settings: Settings, endpoints: Mapping[web.AbstractRoute, Endpoint]) -> Middleware:
    """The middleware, given what it needs of the service's settings and the URL table
    (each request's own row: `endpoints`, see controller/urls.py)."""
    checker, cors_origins = Keys(settings.auth_keys), settings.cors_origins
    max_body_size = settings.max_body_size

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[STARTED] = perf_counter()  # the access log's duration
        url = endpoints.get(request.match_info.route, UNROUTED)
        try:
            answer = preflight(request, cors_origins) or too_big(request, max_body_size)
            if answer is not None:
                return answer
            if not checker.authorized(request, url.access):
                return web.Response(status=401)  # Flynn: an empty body, no WWW-Authenticate
            if url.open:
                return await handler(request)
            keeper = request.app[CONSISTENCY]
            return await consistently(request, handler, url.names_app, keeper)
        except NotFoundError:
            return not_found_response()
        except DomainError as error:
            return error_response(*describe(error))
        except StoreUnavailableError as error:  # a read of the log while the database is away
            return error_response(*describe(UnavailableError(str(error))))
        except web.HTTPNotFound:
            return web.Response(status=404, text="404 page not found")
        except web.HTTPRequestEntityTooLarge as error:
            body = error_document("request_body_too_big", error.text or "Request body too large")
            return error_response(413, body)
        except web.HTTPMethodNotAllowed as error:
            return web.Response(
                status=405, text="Method Not Allowed", headers={"Allow": error.headers["Allow"]}
            )
        except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, error_document("unknown_error", "Something went wrong"))
        finally:
            if url.streams:
                request.app[STREAM_SLOTS].release(request)

    return middleware


def edge_headers(settings: Settings) -> Hook:
    """The on_response_prepare hook (streams send their headers before their handler
    returns, so the middleware cannot add them): the log position an answer stands for, on
    answers to requests that went through the catch-up (authenticated ones), and every
    answer to a browser its CORS headers."""
    cors_origins = settings.cors_origins

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        position: int | None = request.get(keys.WRITTEN)
        if position is not None:
            response.headers[HEADER] = str(position or request.app[keys.READ_MODEL].last_id)
        origin = request.headers.get("Origin")
        if origin:
            for name, value in cors_headers(origin, cors_origins) or ():
                response.headers.setdefault(name, value)

    return hook


def too_big(request: web.Request, limit: int) -> web.Response | None:
    """A 413 for a body announced larger than MAX_BODY_SIZE, before any of it is read."""
    length = request.content_length
    if length is None or length <= limit:
        return None
    message = f"request body of {length} bytes is over the limit of {limit} (MAX_BODY_SIZE)"
    return error_response(413, error_document("request_body_too_big", message))


# -- keys --------------------------------------------------------------------------------


def basic_password(header: str) -> str:
    """The Basic-auth password ("" when absent or malformed); the username is ignored."""
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


class Keys:
    """The configured keys, and the Authorization headers that carried one of them.

    A client sends the same header with every request, and checking it (base64, one HMAC
    comparison per key) costs several times a dict lookup, which reveals nothing about the
    key (str hashes are keyed per process). Failures are not remembered.
    """

    __slots__ = ("_accepted", "_keys")

    #: Headers remembered at most (then forgotten all at once).
    REMEMBERED = 1024

    def __init__(self, auth_keys: tuple[str, ...]) -> None:
        self._keys = auth_keys
        self._accepted: dict[str, None] = {}

    def authorized(self, request: web.Request, access: Access) -> bool:
        """Whether the request may go on: an open endpoint, or a valid key (Basic, or
        ?key= where the endpoint takes it)."""
        if access is Access.OPEN:
            return True
        header = request.headers.get("Authorization", "")
        if header in self._accepted:
            return True
        password = basic_password(header)
        if not password:
            if access is Access.OPEN_WITHOUT_PASSWORD:
                return True
            if may_use_key_param(request, access):
                return key_matches(request.query.get("key", ""), self._keys)
            return False
        if not key_matches(password, self._keys):
            return False
        if len(self._accepted) >= self.REMEMBERED:
            self._accepted.clear()
        self._accepted[header] = None
        return True


def may_use_key_param(request: web.Request, access: Access) -> bool:
    """Whether ?key= may stand for the key: only to read a stream or a backup, the routes
    whose row says so (Flynn takes it on any request that accepts text/event-stream,
    writes included)."""
    if access is Access.KEY_OR_PARAM:
        return True
    return access is Access.KEY_OR_STREAM_PARAM and "text/event-stream" in request.headers.get(
        "Accept", ""
    )
