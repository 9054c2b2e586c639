"""API keys made and revoked straight in the log, with or without a running service
(`evenflow keys`): the key events (and the apps', which `--app` names) are read and folded,
and the command is decided by the same decider as POST /keys and DELETE /keys/{name}, under
the log's write lock (store.append_after), so it lands on the log as it is when appended.
Every service following the log sees it within moments.
"""

from __future__ import annotations

import getpass
import secrets
from datetime import datetime

import attrs

from commands.dispatch import HANDLERS
from commands.keys import CreateKey, RevokeKey
from commands.provenance import mark
from domain.actors import Actor
from domain.codec import decode, encode
from domain.keys import Key, KeyCreated, Scope, secret_hash
from eventstore.record import EventFilter, NewEvent, RecordedEvent
from eventstore.store import EventStore, check_event
from projections.keys import all_keys
from projections.state import State, apply

#: What a key command folds: the keys, and the apps a key may be limited to.
FOLDED = ("key", "key_revocation", "app", "app_deletion")
#: The component named in the actor of the events this tool appends.
COMPONENT = "cli"


@attrs.frozen
class NewKey:
    """A key just made, and its secret: shown once, kept nowhere."""

    key: Key
    secret: str


async def folded(store: EventStore) -> tuple[State, int]:
    """The keys and apps of the log, and the id of the last event read."""
    head = await store.last_id()
    state = State()
    async for record in store.read(until=head, filter=EventFilter(object_types=FOLDED)):
        apply(state, decode(record), record.created_at)
    return state, head


async def keys(store: EventStore) -> list[Key]:
    """Every key made through the log, revoked ones too, newest first."""
    state, _ = await folded(store)
    return all_keys(state)


async def create(
    store: EventStore,
    name: str,
    scope: Scope,
    now: datetime,
    apps: tuple[str, ...] | None = None,
    expires_at: datetime | None = None,
) -> NewKey:
    """Make a key; DomainError (a taken name, an unknown app, ...) if it cannot be."""
    secret = secrets.token_hex(32)
    command = CreateKey(name, scope, secret_hash(secret), now, apps, expires_at)
    (record,) = await _append(store, command)
    made = decode(record)
    assert isinstance(made, KeyCreated)
    return NewKey(made.key, secret)


async def revoke(store: EventStore, name: str, now: datetime) -> None:
    """Revoke a key; NotFoundError if no live key has that name."""
    await _append(store, RevokeKey(name, now))


async def _append(store: EventStore, command: CreateKey | RevokeKey) -> list[RecordedEvent]:
    state, head = await folded(store)
    actor = Actor(component=COMPONENT, user=_login())

    def decide(others: list[RecordedEvent]) -> list[NewEvent]:
        for record in others:
            if record.object_type in FOLDED:
                apply(state, decode(record), record.created_at)
        events = HANDLERS[type(command)](state, command)
        encoded = mark(command, events, [encode(e) for e in events], None, actor)
        for new in encoded:
            check_event(new)
        return encoded

    _, written = await store.append_after(head, decide)
    return written


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        return None
