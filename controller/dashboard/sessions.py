"""Dashboard sessions: a key exchanged for a signed, expiring token held in a cookie.

A session is a token, `v1.<payload>.<mac>`: its payload (a random id, the expiry, the name
of the key that signed in, never its secret) signed with HMAC-SHA256 under a secret derived
from the service's own keys (AUTH_KEY's first; any of them verifies, so a new key put
first keeps the sessions signed under the old one until it is removed). Any worker or
node holding the same keys verifies it, with no shared memory and nothing written to the
log (a sign-in is no change of the platform, and a session in the log would sit in every
backup). On each request the session stands for its key as the fold knows it now
(controller/auth.py `Authenticator.named`): the key's scope and apps apply, actors record
its name, and revoking the key ends its sessions as soon as the fold holds the revocation
(a name is never given to another key). A session cannot be revoked alone, so it expires
(SESSION_SECONDS) and signing out deletes the browser's cookie.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page makes
the browser send it) and Secure over HTTPS. Besides, a request authenticated by the cookie
that changes anything must carry `X-Evenflow-Dashboard: 1`, which a form cannot send and a
page of another origin cannot send without a CORS preflight this service never grants it,
and, if it names an Origin, this service's own.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

import attrs
import orjson
from aiohttp import web

from commands.errors import ForbiddenError
from controller.auth import Authenticator, Principal
from projections.state import State

COOKIE = "evenflow_session"
#: The header a cookie-authenticated write must carry (see the module's docstring).
HEADER = "X-Evenflow-Dashboard"
#: Seconds a session lasts.
SESSION_SECONDS = 12 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_TOKEN = 2048


@attrs.frozen
class Session:
    """A signed-in browser: which key, until when."""

    sid: str
    expires: int  # Unix time
    key: str  # the name of the key that signed in

    def to_json(self, principal: Principal) -> dict[str, object]:
        """The session as GET /dashboard/session shows it: what its key may do now."""
        return describe(principal, self.expires)


SESSION = web.RequestKey("dashboard_session", Session)


def describe(principal: Principal, expires: int | None) -> dict[str, object]:
    """A key's name, scope and apps (ids; None: every app), and when its session ends."""
    apps = None if principal.apps is None else sorted(principal.apps)
    return {
        "key": principal.name,
        "scope": str(principal.scope),
        "apps": apps,
        "expires_at": expires,
    }


def new_session(principal: Principal, now: float | None = None) -> Session:
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    return Session(secrets.token_hex(16), expires, principal.name)


def standing(session: Session, authenticator: Authenticator, state: State) -> Principal | None:
    """The key the session stands for, if it still stands (not revoked, not expired)."""
    return authenticator.named(session.key, state)


@functools.lru_cache(maxsize=64)
def _secret(key: str) -> bytes:
    """The signing secret of one key's sessions (never the key itself)."""
    return hmac.new(key.encode(), b"evenflow dashboard session v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, payload: str) -> bytes:
    return hmac.new(_secret(key), payload.encode(), hashlib.sha256).digest()


def issue(session: Session, key: str) -> str:
    """The token of `session`, signed under `key` (the service's: see the module)."""
    doc = {"sid": session.sid, "exp": session.expires, "key": session.key}
    payload = _b64(orjson.dumps(doc))
    return f"v1.{payload}.{_b64(_mac(key, payload))}"


def verify(token: str, auth_keys: tuple[str, ...], now: float | None = None) -> Session | None:
    """The session of a token signed for one of `auth_keys` and not expired, else None."""
    version, _, rest = token.partition(".")
    payload, _, mac = rest.partition(".")
    if version != "v1" or not payload or len(token) > _MAX_TOKEN:
        return None
    try:
        given = _unb64(mac)
        doc = orjson.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        return None
    # Every key is tried: which one signed takes no less time to find than none.
    results = [hmac.compare_digest(given, _mac(key, payload)) for key in auth_keys]
    if not any(results) or not isinstance(doc, dict):
        return None
    expires = doc.get("exp")
    if not isinstance(expires, int):
        return None
    if not isinstance(doc.get("sid"), str) or not isinstance(doc.get("key"), str):
        return None
    if expires <= (now if now is not None else time.time()):
        return None
    return Session(doc["sid"], expires, doc["key"])


def same_origin(request: web.Request) -> bool:
    """No Origin header (a same-origin GET), or this service's own host."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def check_write(request: web.Request) -> None:
    """Refuse a cross-site write (see the module's docstring): a 403."""
    if request.method in _SAFE_METHODS:
        return
    if request.headers.get(HEADER) != "1" or not same_origin(request):
        raise ForbiddenError(
            f"a write from the dashboard must carry {HEADER}: 1 from its own origin"
        )


def session_key(
    request: web.Request, authenticator: Authenticator, state: State, auth_keys: tuple[str, ...]
) -> Principal | None:
    """The key a request without one stands for through its session cookie (the
    middleware's hook), or None; a 403 for a cross-site write. The route's scope and app
    limits are then checked against that key as against any other."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    session = verify(token, auth_keys)
    principal = None if session is None else standing(session, authenticator, state)
    if session is None or principal is None:
        return None
    check_write(request)
    request[SESSION] = session
    return principal
