"""POST, GET and DELETE /dashboard/session: signing in with a key, who is signed in, signing out."""

from __future__ import annotations

from aiohttp import web

from controller import keys
from controller.auth import Principal
from controller.consistency import CONSISTENCY
from controller.dashboard.sessions import (
    COOKIE,
    SESSION,
    SESSION_SECONDS,
    check_write,
    describe,
    issue,
    new_session,
)
from controller.errors import error_document, error_response
from controller.http import empty_response, encode_json, json_response, read_json


async def _find(request: web.Request, secret: str) -> Principal | None:
    """The standing key of that secret; a key just made may be in the log and not yet in
    this worker's fold (the route is open: no catch-up ran), so a miss catches up once."""
    authenticator = request.app[keys.AUTHENTICATOR]
    model = request.app[keys.READ_MODEL]
    principal = authenticator.find(secret, model.state)
    if principal is None and secret and await request.app[CONSISTENCY].catch_up():
        principal = authenticator.find(secret, model.state)
    return principal


async def sign_in(request: web.Request) -> web.Response:
    secret = (await read_json(request))["key"]
    check_write(request)  # no other site signs a browser in either
    auth_keys = request.app[keys.SETTINGS].auth_keys
    principal = await _find(request, secret)
    if principal is None:
        return error_response(401, error_document("unauthorized", "this key is not valid"))
    if not auth_keys:  # a service always has one (controller/__main__.py); an embedding may not
        message = "sessions are signed under AUTH_KEY's first key: this service has none"
        return error_response(503, error_document("service_unavailable", message, retry=False))
    session = new_session(principal)
    response = json_response(encode_json(session.to_json(principal)))
    response.set_cookie(
        COOKIE,
        issue(session, auth_keys[0]),  # signed under the service's key, whichever signed in
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def whoami(request: web.Request) -> web.Response:
    """The key the request stands for (its session's, or its own) and what it may do."""
    session = request.get(SESSION)
    principal = request[keys.PRINCIPAL]
    expires = None if session is None else session.expires
    return json_response(encode_json(describe(principal, expires)))


async def sign_out(request: web.Request) -> web.Response:
    response = empty_response()
    response.del_cookie(COOKIE, path="/")
    return response
