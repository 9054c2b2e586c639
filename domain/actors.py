"""Who or what caused an event: its actor, kept in the event's meta (never in Flynn's `data`).

A write through the API is acted by a key (its name, never its secret) in a request (its id,
the client's address and user agent). An event the service decides itself names the
component that decided it, the id of the event that caused it (`causation_id`) and the
request at the origin of the chain (`correlation_id`). Consequences decided within one
request (an app deletion's routes, releases and resources) carry the request's actor plus
the component that decided them. Events written before actors existed have none.
"""

from __future__ import annotations

from typing import Any

import attrs

JSON = dict[str, Any]

#: The longest user agent kept (a header may be kilobytes long: an actor is in every event).
MAX_USER_AGENT = 256


@attrs.frozen
class Actor:
    """An event's actor; every field is optional, and an empty one is not stored."""

    key: str | None = None  # the key's name
    request_id: str | None = None
    address: str | None = None  # the client's address (X-Forwarded-For from trusted proxies)
    user_agent: str | None = None
    component: str | None = None  # "scheduler", "deployer", "app_deletion", "cli", ...
    causation_id: int | None = None  # the event that caused this one
    correlation_id: str | None = None  # the request at the origin of the chain
    user: str | None = None  # the login of whoever ran a command-line tool

    @property
    def name(self) -> str:
        """Who, in one word: the key's name, else the component."""
        return self.key or self.component or "-"

    @property
    def origin(self) -> str | None:
        """The request at the origin of what this actor does (its own, or its correlation)."""
        return self.request_id or self.correlation_id

    def names(self, who: str) -> bool:
        """Whether `who` is this actor's key or component (an audit's `--actor`)."""
        return who in (self.key, self.component)

    def cascaded(self, component: str) -> Actor:
        """This actor, for a consequence that `component` decided within its request."""
        return attrs.evolve(self, component=component)

    def to_json(self) -> JSON:
        # By hand, not attrs.asdict: it is encoded once per write.
        doc: JSON = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None and value != "":
                doc[name] = value
        return doc

    def public_json(self) -> JSON:
        """What event envelopes show (PUBLIC_FIELDS)."""
        doc = self.to_json()
        return {name: doc[name] for name in PUBLIC_FIELDS if name in doc}

    @classmethod
    def from_json(cls, doc: object) -> Actor | None:
        """An actor as stored; None for anything else (an older event, a foreign object)."""
        if not isinstance(doc, dict):
            return None
        fields: JSON = {}
        for name in _TEXT_FIELDS:
            value = doc.get(name)
            if isinstance(value, str) and value:
                fields[name] = value
        causation = doc.get("causation_id")
        if isinstance(causation, int) and not isinstance(causation, bool):
            fields["causation_id"] = causation
        return cls(**fields)


_FIELDS = (
    "key",
    "request_id",
    "address",
    "user_agent",
    "component",
    "causation_id",
    "correlation_id",
    "user",
)
#: What event envelopes show of an actor: who and which request, not from where (the
#: client's address and user agent are for the audit view only).
PUBLIC_FIELDS = tuple(name for name in _FIELDS if name not in ("address", "user_agent"))
_TEXT_FIELDS = (
    "key",
    "request_id",
    "address",
    "user_agent",
    "component",
    "correlation_id",
    "user",
)


def caused_by(component: str, event_id: int | None, origin: str | None) -> Actor:
    """The actor of an event `component` decided because of event `event_id`, in the chain
    that request `origin` started."""
    return Actor(component=component, causation_id=event_id, correlation_id=origin)
