"""API keys as the log keeps them: a name, a scope, optionally a list of apps and an expiry,
and only the SHA-256 of the secret (the secret itself is shown once, when it is made).

These are Evenflow's own objects: Flynn has one all-powerful key. Their events (`key`,
`key_revocation`) are shown on the event stream to admin keys only.
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import datetime, timedelta
from typing import ClassVar

import attrs

from domain.objects import JSON
from domain.timefmt import format_time, parse_time


class Scope(enum.StrEnum):
    """What a key may do; each scope includes the ones below it."""

    #: The event, formation and log streams only (with Accept: text/event-stream).
    STREAM = "stream"
    #: Every GET, streams included.
    READ = "read"
    #: Reads, and writes to apps, releases, formations, deployments, jobs, routes, resources.
    DEPLOY = "deploy"
    #: Everything: providers, the domain, backups, keys, the audit view.
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Scope.STREAM: 0, Scope.READ: 1, Scope.DEPLOY: 2, Scope.ADMIN: 3}

#: A key's name: what the audit shows. No ":" (names with one are the bootstrap keys').
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: How the keys of AUTH_KEY are named: by a prefix of their hash, which reveals nothing.
BOOTSTRAP_PREFIX = "auth_key:"


_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def expiry(text: str, now: datetime) -> datetime:
    """When a key given `--expires TEXT` expires: a duration from `now` (`30d`; s, m, h, d,
    w) or an RFC 3339 time. ValueError for anything else."""
    match = _DURATION.fullmatch(text)
    if match:
        try:
            return now + timedelta(seconds=int(match[1]) * _UNITS[match[2]])
        except OverflowError:  # past the year 9999
            raise ValueError(f"{text} from now is past the year 9999") from None
    return parse_time(text)


def secret_hash(secret: str) -> str:
    """What the log keeps of a key's secret: the SHA-256 of its text, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def bootstrap_name(secret: str) -> str:
    """The name of an AUTH_KEY key: `auth_key:` and the first 8 hex digits of its hash."""
    return BOOTSTRAP_PREFIX + secret_hash(secret)[:8]


@attrs.frozen
class Key:
    name: str
    scope: Scope
    secret_sha256: str
    created_at: datetime
    apps: tuple[str, ...] | None = None  # app ids; None: every app
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def to_json(self, *, with_hash: bool = True) -> JSON:
        doc: JSON = {"name": self.name, "scope": str(self.scope)}
        if self.apps is not None:
            doc["apps"] = list(self.apps)
        if self.expires_at is not None:
            doc["expires_at"] = format_time(self.expires_at)
        doc["created_at"] = format_time(self.created_at)
        if self.revoked_at is not None:
            doc["revoked_at"] = format_time(self.revoked_at)
        if with_hash:
            doc["secret_sha256"] = self.secret_sha256
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> Key:
        apps = doc.get("apps")
        expires_at, revoked_at = doc.get("expires_at"), doc.get("revoked_at")
        return cls(
            name=doc["name"],
            scope=Scope(doc["scope"]),
            secret_sha256=doc["secret_sha256"],
            created_at=parse_time(doc["created_at"]),
            apps=None if apps is None else tuple(apps),
            expires_at=None if expires_at is None else parse_time(expires_at),
            revoked_at=None if revoked_at is None else parse_time(revoked_at),
        )


@attrs.frozen
class KeyCreated:
    """A key was made (Evenflow's own: object_type "key"); the data holds its secret's hash."""

    object_type: ClassVar[str] = "key"
    op: ClassVar[str | None] = None
    key: Key

    @property
    def object_id(self) -> str:
        return self.key.name

    @property
    def app_id(self) -> str | None:
        return None

    def data(self) -> JSON:
        return self.key.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> KeyCreated:
        return cls(Key.from_json(data))


@attrs.frozen
class KeyRevoked:
    """A key was revoked (Evenflow's own: object_type "key_revocation")."""

    object_type: ClassVar[str] = "key_revocation"
    op: ClassVar[str | None] = None
    name: str
    revoked_at: datetime

    @property
    def object_id(self) -> str:
        return self.name

    @property
    def app_id(self) -> str | None:
        return None

    def data(self) -> JSON:
        return {"name": self.name, "revoked_at": format_time(self.revoked_at)}

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> KeyRevoked:
        return cls(data["name"], parse_time(data["revoked_at"]))


#: The object types of the key events: admin keys alone see them on the event stream.
KEY_OBJECT_TYPES = frozenset({KeyCreated.object_type, KeyRevoked.object_type})
