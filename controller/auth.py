"""Who is calling, and whether they may: a request's key found by its hash, then its scope,
its apps and its expiry checked against the route's row of the URL table.

Keys are found by the SHA-256 of the password: a dict lookup among the keys of AUTH_KEY
(bootstrap admin keys) and the live keys of the log (projections/keys.py), so the service
holds no secret of a key made through the log, and how long a lookup takes says nothing
about any key (nobody can choose a digest). A client sends the same Authorization header
with every request: the headers that carried a key are remembered with what they were
found to be, and checked against the fold on every use, so a revocation the fold has
folded refuses the next request, on every worker and node following the log.
"""

from __future__ import annotations

import base64
import binascii
import time

from aiohttp import web

from controller.endpoints import Access, AppLimit, Endpoint
from domain.keys import KEY_OBJECT_TYPES, Key, Scope, bootstrap_name, secret_hash
from projections.state import State

_NO_TYPES: frozenset[str] = frozenset()


class Principal:
    """A key as a request presents it: its name, scope, apps (ids; None: every app)."""

    __slots__ = (
        "apps", "expires", "hidden_types", "key", "name", "rank", "scope", "secret_sha256",
    )  # fmt: skip

    def __init__(self, name: str, scope: Scope, secret_sha256: str, key: Key | None) -> None:
        self.name = name
        self.scope = scope
        self.rank = scope.rank  # read on every request: an int, not a property
        self.secret_sha256 = secret_sha256
        self.key = key  # the log's key; None for a key of AUTH_KEY
        self.apps = None if key is None or key.apps is None else frozenset(key.apps)
        self.expires = None if key is None or key.expires_at is None else key.expires_at.timestamp()
        # What its event streams and listings leave out: the keys' own events, to all but admins.
        self.hidden_types = _NO_TYPES if scope is Scope.ADMIN else KEY_OBJECT_TYPES

    @classmethod
    def of(cls, key: Key) -> Principal:
        return cls(key.name, key.scope, key.secret_sha256, key)

    def current(self, state: State) -> bool:
        """Whether the key still stands: not revoked (in the fold), not expired."""
        if self.key is None:  # a key of AUTH_KEY: it stands as long as the process
            return True
        if state.live_keys.get(self.secret_sha256) is not self.key:
            return False
        return self.expires is None or time.time() < self.expires

    def sees(self, app_id: str | None) -> bool:
        """Whether an object of app `app_id` (None: of no app) is this key's to see."""
        return self.apps is None or app_id in self.apps


class Authenticator:
    """The keys of AUTH_KEY, and the Authorization headers that carried a key.

    Failures are not remembered; at most REMEMBERED headers are (then forgotten at once).
    """

    __slots__ = ("_accepted", "_bootstrap")

    REMEMBERED = 1024

    def __init__(self, bootstrap_keys: tuple[str, ...]) -> None:
        self._bootstrap = {
            secret_hash(secret): Principal(bootstrap_name(secret), Scope.ADMIN, "", None)
            for secret in bootstrap_keys
        }
        self._accepted: dict[str, Principal] = {}

    def authenticate(self, request: web.Request, access: Access, state: State) -> Principal | None:
        """The key the request carries (Basic auth, or ?key= where the row takes it), if it
        stands; None when there is none or it does not (for an open row: nobody asked)."""
        header = request.headers.get("Authorization", "")
        known = self._accepted.get(header)
        if known is not None and known.current(state):
            return known
        password = basic_password(header)
        if not password:
            if may_use_key_param(request, access):
                return self.find(request.query.get("key", ""), state)
            return None
        principal = self.find(password, state)
        if principal is not None:
            if len(self._accepted) >= self.REMEMBERED:
                self._accepted.clear()
            self._accepted[header] = principal
        return principal

    def find(self, secret: str, state: State) -> Principal | None:
        """The standing key whose secret is `secret`."""
        if not secret:
            return None
        digest = secret_hash(secret)
        principal = self._bootstrap.get(digest)
        if principal is not None:
            return principal
        key = state.live_keys.get(digest)
        if key is None:
            return None
        principal = Principal.of(key)
        return principal if principal.current(state) else None

    def named(self, name: str, state: State) -> Principal | None:
        """The standing key named `name`: what a session that holds a key's name (not its
        secret) is checked against on each request, so that it ends with its key."""
        for principal in self._bootstrap.values():
            if principal.name == name:
                return principal
        key = state.keys.get(name)
        if key is None or key.revoked_at is not None:
            return None
        principal = Principal.of(key)
        return principal if principal.current(state) else None

    def bootstrap(self) -> list[Principal]:
        return list(self._bootstrap.values())


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


def may_use_key_param(request: web.Request, access: Access) -> bool:
    """Whether ?key= may stand for the key: only to read a stream or a backup, the routes
    whose row says so (Flynn takes it on any request that accepts text/event-stream,
    writes included)."""
    if access is Access.KEY_OR_PARAM:
        return True
    return access is Access.KEY_OR_STREAM_PARAM and asks_for_stream(request)


def asks_for_stream(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def refusal(principal: Principal, url: Endpoint, request: web.Request) -> str | None:
    """Why the key may not call the route (a 403's message), or None if it may.

    Each scope includes those below it; a `stream` key may also call a `read` route that
    streams, when the request asks for the stream (Accept: text/event-stream).
    """
    needed = url.scope
    if principal.rank < url.scope_rank and not (
        principal.scope is Scope.STREAM
        and needed is Scope.READ
        and url.streams
        and asks_for_stream(request)
    ):
        return (
            f"the key {principal.name!r} has the {principal.scope} scope: "
            f"{request.method} {url.path} needs {needed}"
        )
    if principal.apps is not None and url.app_limit is AppLimit.REFUSE:
        return (
            f"the key {principal.name!r} is limited to some apps: "
            f"{request.method} {url.path} is not for such keys"
        )
    return None


def open_door(
    authenticator: Authenticator, request: web.Request, url: Endpoint, state: State
) -> bool:
    """Whether an open route lets the request in: anyone, or (Flynn's /ca-cert) anyone who
    gives no password at all, a wrong one being refused."""
    if url.access is Access.OPEN:
        return True
    header = request.headers.get("Authorization", "")
    return (
        not basic_password(header)
        or authenticator.authenticate(request, url.access, state) is not None
    )
