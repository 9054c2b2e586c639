"""API keys over HTTP (Evenflow's own, admin keys only): POST /keys makes one and answers its
secret, once; GET /keys lists them (AUTH_KEY's too), DELETE /keys/{name} revokes one.
No answer but the creation's holds a secret, and none holds a secret's hash."""

from __future__ import annotations

import secrets

from aiohttp import web

from commands.errors import ValidationError
from commands.keys import CreateKey, RevokeKey
from controller import keys
from controller.handlers.common import dispatch, event_from, model
from controller.http import encode_json, json_response, read_json
from domain.clock import now
from domain.keys import BOOTSTRAP_PREFIX, Key, KeyCreated, Scope, expiry, secret_hash
from domain.objects import JSON
from projections.keys import all_keys, key_named


def _shown(key: Key) -> JSON:
    return key.to_json(with_hash=False)


async def create_key(request: web.Request) -> web.Response:
    doc = await read_json(request)
    moment = now()
    expires_at = None
    for field in ("expires_at", "expires_in"):
        if field in doc:
            try:
                expires_at = expiry(doc[field], moment)
            except ValueError:
                raise ValidationError(field, "is not a time nor a duration") from None
    secret = secrets.token_hex(32)
    apps = doc.get("apps")
    command = CreateKey(
        doc["name"], Scope(doc["scope"]), secret_hash(secret), moment,
        None if apps is None else tuple(apps), expires_at,
    )  # fmt: skip
    key = event_from(await dispatch(request, command), KeyCreated).key
    response = json_response(encode_json(_shown(key) | {"secret": secret}))
    response.headers["Cache-Control"] = "no-store"  # the one answer holding the secret
    return response


async def list_keys(request: web.Request) -> web.Response:
    bootstrap = [
        {"name": p.name, "scope": str(p.scope), "bootstrap": True}
        for p in request.app[keys.AUTHENTICATOR].bootstrap()
    ]
    made = [_shown(key) for key in all_keys(model(request).state)]
    return json_response(encode_json(bootstrap + made))


async def revoke_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name.startswith(BOOTSTRAP_PREFIX):
        raise ValidationError("name", "is a key of AUTH_KEY: remove it from AUTH_KEY instead")
    await dispatch(request, RevokeKey(name, now()))
    revoked = key_named(model(request).state, name)
    return json_response(encode_json(_shown(revoked) if revoked is not None else {"name": name}))
