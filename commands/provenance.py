"""What a command's events carry besides Flynn's data: their meta (eventstore.record).

`{"actor": ...}` (domain.actors) on every event of a command that has one, beside the
Idempotency-Key fields of a write sent with one (projections.idempotency). A command that
decides consequences of its own events in the same append (an app deletion's routes,
releases and resources; a domain migration's route copies; a new app's default route)
gives those consequences the request's actor plus the component that decided them.
"""

from __future__ import annotations

from commands.apps import CreateApp, DeleteApp
from commands.domains import MigrateDomain
from commands.types import Command
from domain.actors import Actor
from domain.codec import encode_meta
from domain.events import AppCreated, AppDeleted, DomainMigrated, Event
from eventstore.record import NewEvent
from projections.idempotency import Idempotency

#: Commands whose events hold consequences: (the component deciding them, the event types
#: that are the command's own); every other event of such a command is a consequence.
CASCADES: dict[type, tuple[str, tuple[type[Event], ...]]] = {
    DeleteApp: ("app_deletion", (AppDeleted,)),
    MigrateDomain: ("domain_migration", (DomainMigrated,)),
    CreateApp: ("default_route", (AppCreated,)),
}


def mark(
    command: Command,
    events: list[Event],
    encoded: list[NewEvent],
    idempotency: Idempotency | None,
    actor: Actor | None,
) -> list[NewEvent]:
    """`encoded` (the encoding of `events`, one command's) with their meta."""
    if idempotency is None and actor is None:
        return encoded
    actor_doc = cascade_doc = None
    own: tuple[type[Event], ...] = ()
    if actor is not None:
        actor_doc = actor.to_json()
        cascade = CASCADES.get(type(command))
        if cascade is not None:
            component, own = cascade
            cascade_doc = actor_doc | {"component": component}  # actor.cascaded(component)
    # Without an Idempotency-Key every event's meta is one of (at most) two: encoded once.
    same: dict[bool, bytes] = {}
    marked = []
    for n, (event, new) in enumerate(zip(events, encoded, strict=True)):
        consequence = cascade_doc is not None and not isinstance(event, own)
        if idempotency is None:
            stored = same.get(consequence) or same.setdefault(
                consequence, encode_meta({"actor": cascade_doc if consequence else actor_doc})
            )
        else:
            meta: dict[str, object] = idempotency.fields(n == 0)
            if actor_doc is not None:
                meta["actor"] = cascade_doc if consequence else actor_doc
            stored = encode_meta(meta)
        marked.append(
            NewEvent(
                new.type,
                new.object_type,
                new.object_id,
                new.app_id,
                new.data,
                new.op,
                new.unique_id,
                stored,
            )
        )
    return marked
