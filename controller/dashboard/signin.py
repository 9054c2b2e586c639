"""POST, GET and DELETE /dashboard/session: signing in with a key, who is signed in, signing out."""

from __future__ import annotations

from aiohttp import web

from controller import keys
from controller.dashboard.sessions import (
    COOKIE,
    SESSION,
    SESSION_SECONDS,
    KeyGrant,
    check_write,
    issue,
    key_name,
    new_session,
)
from controller.errors import error_document, error_response
from controller.http import empty_response, encode_json, json_response, read_json
from controller.middlewares import basic_password, key_matches


def describe_key(key: str, auth_keys: tuple[str, ...]) -> KeyGrant | None:
    """The name, scope and apps of a valid key (None for any other): today the keys of
    AUTH_KEY, each of which may do anything.

    With sessions.standing, the one place scoped keys decide what a session may do.
    """
    if not key_matches(key, auth_keys):
        return None
    return key_name(key), "admin", None


async def sign_in(request: web.Request) -> web.Response:
    key = (await read_json(request))["key"]
    check_write(request)  # no other site signs a browser in either
    auth_keys = request.app[keys.SETTINGS].auth_keys
    grant = describe_key(key, auth_keys)
    if grant is None:
        return error_response(401, error_document("unauthorized", "this key is not valid"))
    session = new_session(grant)
    response = json_response(encode_json(session.to_json()))
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
    """The session's scope; a request with the key itself may do what the key may."""
    session = request.get(SESSION)
    if session is not None:
        return json_response(encode_json(session.to_json()))
    grant = describe_key(
        basic_password(request.headers.get("Authorization", "")),
        request.app[keys.SETTINGS].auth_keys,
    )
    name, scope, apps = grant or (None, "admin", None)  # the edge let its key in
    doc = {"key": name, "scope": scope, "apps": apps, "expires_at": None}
    return json_response(encode_json(doc))


async def sign_out(request: web.Request) -> web.Response:
    response = empty_response()
    response.del_cookie(COOKIE, path="/")
    return response
