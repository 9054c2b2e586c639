"""API keys: made and revoked through the log (POST/DELETE /keys, `evenflow keys`).

The log keeps a key's name, scope, apps (by id: a name may pass to a new app once its app is
deleted) and expiry, and the SHA-256 of its secret, never the secret. A name is given once,
ever: the audit names actors by it.
"""

from __future__ import annotations

import re
from datetime import datetime

import attrs

from commands.errors import AlreadyExistsError, NotFoundError, ValidationError
from commands.providers import resolve_apps
from commands.types import handler, handlers
from domain.events import Event
from domain.keys import NAME, Key, KeyCreated, KeyRevoked, Scope
from projections.state import State

_SHA256 = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class CreateKey:
    name: str
    scope: Scope
    secret_sha256: str
    now: datetime
    apps: tuple[str, ...] | None = None  # ids or names; None: every app
    expires_at: datetime | None = None


@attrs.frozen
class RevokeKey:
    name: str
    now: datetime


def create_key(state: State, cmd: CreateKey) -> list[Event]:
    if not NAME.fullmatch(cmd.name):
        raise ValidationError(
            "name", "must be 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )
    if cmd.name in state.keys:
        raise AlreadyExistsError(f'key "{cmd.name}" already exists (a name is given once)')
    if not _SHA256.fullmatch(cmd.secret_sha256):
        raise ValidationError("secret_sha256", "must be a SHA-256 in lower-case hex")
    if cmd.expires_at is not None and cmd.expires_at <= cmd.now:
        raise ValidationError("expires_at", "must be in the future")
    key = Key(
        name=cmd.name,
        scope=cmd.scope,
        secret_sha256=cmd.secret_sha256,
        created_at=cmd.now,
        apps=_app_ids(state, cmd),
        expires_at=cmd.expires_at,
    )
    return [KeyCreated(key)]


def _app_ids(state: State, cmd: CreateKey) -> tuple[str, ...] | None:
    if cmd.apps is None:
        return None
    if cmd.scope is Scope.ADMIN:
        # An admin could make itself a key for any app: a limit would not hold.
        raise ValidationError("apps", "an admin key cannot be limited to apps")
    if not cmd.apps:
        raise ValidationError("apps", "must name at least one app")
    return resolve_apps(state, cmd.apps, unknown="no app {!r}")


def revoke_key(state: State, cmd: RevokeKey) -> list[Event]:
    key = state.keys.get(cmd.name)
    if key is None or key.revoked_at is not None:
        raise NotFoundError(f"no live key named {cmd.name!r}")
    return [KeyRevoked(cmd.name, cmd.now)]


HANDLERS = handlers(
    handler(CreateKey, create_key),
    handler(RevokeKey, revoke_key),
)
