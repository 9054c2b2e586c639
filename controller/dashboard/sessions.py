"""Dashboard sessions: a key exchanged for a signed, expiring token held in a cookie.

A session is a token, `v1.<payload>.<mac>`: its payload (a random id, the expiry, the name
of the key that signed in, never its secret, and that key's scope) signed with HMAC-SHA256
under a secret derived from the service's own keys (AUTH_KEY's first; any of them verifies,
so a new key put first keeps the sessions signed under the old one until it is removed).
Any worker or node holding the same keys verifies it, with no shared memory and nothing
written to the log (a sign-in is no change of the platform, and a session in the log
would sit in every backup). Each request checks that the key the session names still
stands, so removing a key ends its sessions at once; a session cannot be revoked alone,
so it expires (SESSION_SECONDS) and signing out deletes the browser's cookie.

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
from typing import Literal
from urllib.parse import urlsplit

import attrs
import orjson
from aiohttp import web

from controller.errors import error_document

COOKIE = "evenflow_session"
#: The header a cookie-authenticated write must carry (see the module's docstring).
HEADER = "X-Evenflow-Dashboard"
#: Seconds a session lasts.
SESSION_SECONDS = 12 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_TOKEN = 2048

Scope = Literal["admin", "deploy", "read", "stream"]
SCOPES: tuple[Scope, ...] = ("admin", "deploy", "read", "stream")


@attrs.frozen
class Session:
    """A signed-in browser: what its key may do, until when."""

    sid: str
    expires: int  # Unix time
    key: str  # the name of the key that signed in
    scope: Scope = "admin"
    apps: tuple[str, ...] | None = None  # the apps an app-limited key sees; None: all

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "scope": self.scope,
            "apps": None if self.apps is None else list(self.apps),
            "expires_at": self.expires,
        }


SESSION = web.RequestKey("dashboard_session", Session)
#: What a key is to a session: its name, its scope, its apps (None: all).
KeyGrant = tuple[str, Scope, tuple[str, ...] | None]


def key_name(key: str) -> str:
    """The name of a key of AUTH_KEY: `auth_key:` and the first 8 hex digits of its SHA-256
    (what the key shows in events and audits, never the key)."""
    return "auth_key:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def standing(session: Session, auth_keys: tuple[str, ...]) -> Session | None:
    """The session if the key it names still stands (with what that key may do now), else
    None: today, if that key is still one of AUTH_KEY.

    With signin.describe_key, the one place scoped keys decide what a session may do.
    """
    names = [key_name(key) for key in auth_keys]
    return session if session.key in names else None


def new_session(grant: KeyGrant, now: float | None = None) -> Session:
    name, scope, apps = grant
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    return Session(secrets.token_hex(16), expires, name, scope, apps)


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
    doc["scope"] = session.scope
    if session.apps is not None:
        doc["apps"] = list(session.apps)
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
    expires, scope, apps = doc.get("exp"), doc.get("scope"), doc.get("apps")
    if not isinstance(expires, int) or scope not in SCOPES:
        return None
    if not isinstance(doc.get("sid"), str) or not isinstance(doc.get("key"), str):
        return None
    if expires <= (now if now is not None else time.time()):
        return None
    if apps is not None and not (isinstance(apps, list) and all(isinstance(a, str) for a in apps)):
        return None
    return Session(doc["sid"], expires, doc["key"], scope, None if apps is None else tuple(apps))


def permits(session: Session, request: web.Request) -> bool:
    """Whether the session's scope lets it make this request (app limits: issue 16)."""
    if session.scope in ("admin", "deploy"):
        return True
    if request.method not in _SAFE_METHODS:
        return False
    if session.scope == "read":
        return True
    return "text/event-stream" in request.headers.get("Accept", "") or is_own(request)


def is_own(request: web.Request) -> bool:
    """The dashboard's page, files and session, which any signed-in browser may read (its
    other reads, the apps at a glance and the time machine, are a `read` key's)."""
    path = request.path
    return path in ("/", "/dashboard/session") or path.startswith("/dashboard/static/")


def forbidden(message: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(
        text=error_document("forbidden", message).decode(), content_type="application/json"
    )


def same_origin(request: web.Request) -> bool:
    """No Origin header (a same-origin GET), or this service's own host."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def check_write(request: web.Request) -> None:
    """Refuse a cross-site write (see the module's docstring): raises a 403."""
    if request.method in _SAFE_METHODS:
        return
    if request.headers.get(HEADER) != "1" or not same_origin(request):
        raise forbidden(f"a write from the dashboard must carry {HEADER}: 1 from its own origin")


def session_admits(request: web.Request, auth_keys: tuple[str, ...]) -> bool:
    """Whether the request's session cookie authenticates it (the middleware's hook for a
    request without a key). Raises a 403 for a cross-site write or one out of scope."""
    token = request.cookies.get(COOKIE)
    if not token:
        return False
    session = verify(token, auth_keys)
    session = None if session is None else standing(session, auth_keys)
    if session is None:
        return False
    check_write(request)
    if not permits(session, request):
        raise forbidden(f"a {session.scope} key may not {request.method} {request.path}")
    request[SESSION] = session
    return True
