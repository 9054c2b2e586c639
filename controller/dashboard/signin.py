"""POST, GET and DELETE /dashboard/session: signing in with a key, who is signed in, signing out."""

from __future__ import annotations

from aiohttp import web

from controller import keys
from controller.dashboard.sessions import (
    COOKIE,
    SESSION,
    SESSION_SECONDS,
    check_write,
    issue,
    new_session,
    scope_of_key,
)
from controller.errors import error_document, error_response
from controller.http import empty_response, encode_json, json_response, read_json
from controller.middlewares import basic_password, key_matches


async def sign_in(request: web.Request) -> web.Response:
    check_write(request)  # no other site signs a browser in either
    key = (await read_json(request))["key"]
    if not key_matches(key, request.app[keys.SETTINGS].auth_keys):
        return error_response(401, error_document("unauthorized", "this key is not valid"))
    session = new_session(key)
    response = json_response(encode_json(session.to_json()))
    response.set_cookie(
        COOKIE,
        issue(session, key),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def whoami(request: web.Request) -> web.Response:
    """The session's scope; a request with the key itself may do what the key may."""
    session = request.get(SESSION)
    if session is not None:
        return json_response(encode_json(session.to_json()))
    scope, apps = scope_of_key(basic_password(request.headers.get("Authorization", "")))
    return json_response(encode_json({"scope": scope, "apps": apps, "expires_at": None}))


async def sign_out(request: web.Request) -> web.Response:
    response = empty_response()
    response.del_cookie(COOKIE, path="/")
    return response
