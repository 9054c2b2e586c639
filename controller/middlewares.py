"""The one middleware every request passes, and the one hook every answer's headers pass.

`edge`, in this order: the request's id taken or made (controller/actors.py), errors become
Flynn's documents (it is outermost: nothing below it raises past it), CORS preflights are
answered, bodies announced too large refused, the key found (without one, the key a
dashboard session's cookie stands for: controller/dashboard/sessions.py; one this fold does
not know, once more after catching up with the log) and its scope and apps checked against
the route's row (controller/auth.py), the request answered from a fold that holds every
write acknowledged before it (controller/consistency.py), and a stream's slot given back
however its handler ends. `edge_headers` gives every answer its
request id, its CORS headers and its log position.

One middleware rather than one per concern: each layer costs a coroutine per request, and
what a request needs of its route (open? `?key=`? names an app? streams? its scope?) was
worked out from the URL table at start-up (controller/endpoints.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Middleware

from commands.errors import DomainError, ForbiddenError, NotFoundError, UnavailableError
from controller import keys
from controller.access_log import RequestLog
from controller.actors import REQUEST_ID_HEADER, request_id
from controller.auth import Authenticator, Principal, open_door, refusal
from controller.consistency import CONSISTENCY, HEADER, FoldLagging, consistently, lagging
from controller.cors import cors_headers, preflight
from controller.dashboard.sessions import COOKIE, session_key
from controller.endpoints import UNROUTED, AppLimit, Endpoint, Handler
from controller.errors import describe, error_document, error_response
from controller.limits import STREAM_SLOTS
from eventstore.store import StoreUnavailableError
from projections.apps import find_app
from projections.state import State
from service.settings import Settings

logger = logging.getLogger(__name__)

Hook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def not_found_response() -> web.Response:
    """Flynn's not-found: a bare 404 with an empty body (its Go client relies on that)."""
    return web.Response(status=404)


def edge(
    settings: Settings,
    endpoints: Mapping[web.AbstractRoute, Endpoint],
    authenticator: Authenticator | None = None,
    requests: RequestLog | None = None,
) -> Middleware:
    """The middleware, given what it needs of the service's settings and the URL table
    (each request's own row: `endpoints`, see controller/urls.py), who may call (AUTH_KEY's
    keys unless told), and where each request's end is counted and logged."""
    authenticator = authenticator or Authenticator(settings.auth_keys)
    requests = requests or RequestLog(secrets=settings.auth_keys)
    ended = requests.ended
    cors_origins, auth_keys = settings.cors_origins, settings.auth_keys
    max_body_size = settings.max_body_size

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        url = endpoints.get(request.match_info.route, UNROUTED)
        request[keys.REQUEST_ID] = request_id(request)
        try:
            # One coroutine, no early return: every answer is counted below.
            response: web.StreamResponse
            answer = preflight(request, cors_origins) or too_big(request, max_body_size)
            state = request.app[keys.READ_MODEL].state
            if answer is not None:
                response = answer
            elif url.open:
                if open_door(authenticator, request, url, state):
                    response = await handler(request)
                else:
                    response = web.Response(status=401)
            elif (
                principal := _principal(request, authenticator, url, state, auth_keys)
                or await _key_made_elsewhere(request, authenticator, url, auth_keys)
            ) is None:
                response = web.Response(status=401)  # Flynn: an empty body, no WWW-Authenticate
            else:
                request[keys.PRINCIPAL] = principal
                if principal.rank < url.scope_rank or principal.apps is not None:
                    refused = refusal(principal, url, request)
                    if refused is not None:
                        raise ForbiddenError(refused)
                    if principal.apps is not None and url.app_limit is AppLimit.PATH:
                        handler = _path_app_limited(handler, principal)
                keeper = request.app[CONSISTENCY]
                response = await consistently(request, handler, url.names_app, keeper)
        except NotFoundError:
            response = not_found_response()
        except FoldLagging as lag:
            response = lagging(lag)
        except DomainError as error:
            response = error_response(*describe(error))
        except StoreUnavailableError as error:  # a read of the log while the database is away
            response = error_response(*describe(UnavailableError(str(error))))
        except web.HTTPNotFound:
            response = web.Response(status=404, text="404 page not found")
        except web.HTTPRequestEntityTooLarge as error:
            body = error_document("request_body_too_big", error.text or "Request body too large")
            response = error_response(413, body)
        except web.HTTPMethodNotAllowed as error:
            response = web.Response(
                status=405, text="Method Not Allowed", headers={"Allow": error.headers["Allow"]}
            )
        except web.HTTPException as error:  # an answer raised (a redirect): aiohttp sends it
            ended(request, url.label, error.status, None, started)
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise  # the client left: no answer to count or log
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, request.path)
            response = error_response(500, error_document("unknown_error", "Something went wrong"))
        finally:
            if url.streams:
                request.app[STREAM_SLOTS].release(request)
        ended(request, url.label, response.status, response, started)
        return response

    return middleware


def edge_headers(settings: Settings) -> Hook:
    """The on_response_prepare hook (streams send their headers before their handler
    returns, so the middleware cannot add them): the log position an answer stands for, on
    answers to requests that went through the catch-up (authenticated ones), and every
    answer to a browser its CORS headers."""
    cors_origins = settings.cors_origins

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        rid = request.get(keys.REQUEST_ID)
        if rid is not None:
            response.headers[REQUEST_ID_HEADER] = rid
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


def _principal(
    request: web.Request,
    authenticator: Authenticator,
    url: Endpoint,
    state: State,
    auth_keys: tuple[str, ...],
) -> Principal | None:
    """The standing key the request carries, or else the one its dashboard session's cookie
    stands for."""
    return authenticator.authenticate(request, url.access, state) or session_key(
        request, authenticator, state, auth_keys
    )


async def _key_made_elsewhere(
    request: web.Request, authenticator: Authenticator, url: Endpoint, auth_keys: tuple[str, ...]
) -> Principal | None:
    """The key of a request that carries one this fold does not know, found after catching
    up with the log: a key made (or a session opened) a moment ago through another worker
    or node is accepted at once, as a 404 catches up before it is answered. Requests that
    arrive together share the head query (controller/consistency.py: LogHead)."""
    if not (
        request.headers.get("Authorization")
        or "key=" in request.query_string
        or COOKIE in request.cookies
    ):
        return None
    keeper = request.app[CONSISTENCY]
    folded = keeper.model.last_id
    if not await keeper.catch_up() or keeper.model.last_id == folded:
        return None
    return _principal(request, authenticator, url, keeper.model.state, auth_keys)


def _path_app_limited(handler: Handler, principal: Principal) -> Handler:
    """`handler`, for a key limited to some apps: the app its path names must be one of
    them. Another is "not found" (inside the catch-up: a name may be new to this fold)."""

    async def limited(request: web.Request) -> web.StreamResponse:
        app = find_app(request.app[keys.READ_MODEL].state, request.match_info["app"])
        if app is None or not principal.sees(app.id):
            raise NotFoundError()
        return await handler(request)

    return limited
