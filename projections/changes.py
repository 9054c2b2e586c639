"""What a folded batch changed, as the SQL read model mirrors it: read from the fold's journal
(projections.state), never from the events, so that `apply` stays the only interpreter of
events and the SQL model a writer of the objects it left.

A batch's changes are, per kind of object (`KINDS`, the SQL model's tables), each object it
touched as the batch left it (`Put`), and each app-release link it made or removed. A kind
is fed by the State containers of its `Mirror`: where its live objects are, and where the
deleted ones go, if the state keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from projections.state import MISSING, Entry, State

#: (app id, release id) -> (the last event that linked or unlinked them, linked now).
Links = dict[tuple[str, str], tuple[int, bool]]
#: Where each event's entries begin in a batch's journal: (index, event id, commit time).
Mark = tuple[int, int, datetime]


@attrs.frozen
class Put:
    """An object as a batch left it."""

    obj: Any  # the object now; one the state dropped (a route, a resource): its last value
    event_id: int  # the last event of the batch that changed it
    deleted_at: datetime | None  # None: live
    # Deleted already before the batch: a deletion time written earlier stands (deleted_at
    # is then only the best guess, for a model that never saw the deletion).
    deleted_earlier: bool = False


@attrs.frozen
class Changes:
    """What the batches of the log with after < id <= upto changed."""

    after: int
    upto: int
    at: datetime | None  # the commit time of event `upto`, if known
    puts: dict[str, dict[Any, Put]] = attrs.field(factory=dict)  # kind -> key -> Put
    links: Links = attrs.field(factory=dict)
    # Every object and link there is (see everything): rows and links not in it are gone.
    complete: bool = False
    events: int = 0  # events folded, and bytes of their payloads: what a batch weighs
    size: int = 0


@attrs.frozen
class Mirror:
    """A kind of object of the SQL model and the State containers that hold it."""

    kind: str
    live: str  # State attribute: key -> live object
    graveyard: str | None = None  # State attribute: key -> deleted object, if kept
    # For objects that stay in `live` once deleted (Flynn's soft-deleted formations).
    deleted: Callable[[Any], bool] | None = None

    def is_live(self, obj: Any) -> bool:
        return self.deleted is None or not self.deleted(obj)


MIRRORS = (
    Mirror("apps", "apps", "deleted_apps"),
    Mirror("releases", "releases", "deleted_releases"),
    Mirror("artifacts", "artifacts"),
    Mirror("formations", "formations", deleted=lambda formation: formation.deleted),
    Mirror("jobs", "jobs"),
    Mirror("deployments", "deployments"),
    Mirror("providers", "providers"),
    Mirror("resources", "resources"),
    Mirror("routes", "routes"),
    Mirror("domain_migrations", "domain_migrations"),
)
KINDS = tuple(mirror.kind for mirror in MIRRORS)


def extract(
    state: State, journal: Sequence[Entry], marks: Sequence[Mark], after: int, size: int = 0
) -> Changes:
    """The changes of a batch that `state` folded with `journal` recording (and now holds).

    `marks` says which event made which entries, in log order (one mark per event, even one
    that changed nothing); `after` is the position before the batch, `size` its payloads'
    bytes. The deletion time of an object is that of the last event that found it live.
    """
    containers: dict[int, tuple[Mirror, bool]] = {}
    for mirror in MIRRORS:
        containers[id(getattr(state, mirror.live))] = (mirror, True)
        if mirror.graveyard is not None:
            containers[id(getattr(state, mirror.graveyard))] = (mirror, False)
    app_releases = state.app_releases
    # kind -> key -> [last event id, its time, time of the last event that found it live,
    # the last live value it had]
    touched: dict[Mirror, dict[Any, list[Any]]] = {}
    links: dict[tuple[str, str], int] = {}
    m, count = 0, len(marks)
    next_start = marks[1][0] if count > 1 else len(journal)
    event_id, at = marks[0][1], marks[0][2]
    for i, entry in enumerate(journal):
        while i >= next_start:
            m += 1
            event_id, at = marks[m][1], marks[m][2]
            next_start = marks[m + 1][0] if m + 1 < count else len(journal)
        if len(entry) == 5:  # a member of an index: (members, member, previous, index, owner)
            if entry[3] is app_releases:
                links[(entry[4], entry[1])] = event_id
            continue
        found = containers.get(id(entry[0]))
        if found is None:
            continue
        mirror, in_live = found
        keys = touched.setdefault(mirror, {})
        seen = keys.get(entry[1])
        if seen is None:
            seen = keys[entry[1]] = [event_id, at, None, None]
        else:
            seen[0], seen[1] = event_id, at
        previous = entry[2]
        if in_live and previous is not MISSING and mirror.is_live(previous):
            seen[2], seen[3] = at, previous
    changes = Changes(after, marks[-1][1], marks[-1][2], events=count, size=size)
    for mirror, keys in touched.items():
        changes.puts[mirror.kind] = _puts(state, mirror, keys)
    for (app_id, release_id), linked_by in links.items():
        linked = release_id in app_releases.get(app_id, ())
        changes.links[(app_id, release_id)] = (linked_by, linked)
    return changes


def _puts(state: State, mirror: Mirror, keys: dict[Any, list[Any]]) -> dict[Any, Put]:
    live: dict[Any, Any] = getattr(state, mirror.live)
    graveyard: dict[Any, Any] = getattr(state, mirror.graveyard) if mirror.graveyard else {}
    puts = {}
    for key, (event_id, at, live_until, last_live) in keys.items():
        obj = live.get(key)
        if obj is not None and mirror.is_live(obj):
            puts[key] = Put(obj, event_id, None)
            continue
        if obj is None:
            obj = graveyard.get(key, last_live)  # last_live: one the state dropped
        if obj is None:
            continue  # it came and went within the batch, in the graveyard only
        if live_until is None:  # deleted all along the batch
            puts[key] = Put(obj, event_id, _deleted_at(obj, at), deleted_earlier=True)
        else:
            puts[key] = Put(obj, event_id, live_until)
    return puts


def everything(state: State, upto: int, at: datetime | None) -> Changes:
    """All that `state` holds at position `upto`, as the changes of the whole log (a
    resync): the deletion times it cannot tell are guesses that stored ones override.

    A soft-deleted object's is its updated_at (the time of its latest deletion), else `at`.
    """
    changes = Changes(0, upto, at, complete=True)
    for mirror in MIRRORS:
        puts: dict[Any, Put] = {}
        for key, obj in getattr(state, mirror.live).items():
            live = mirror.is_live(obj)
            puts[key] = Put(obj, upto, None if live else _deleted_at(obj, at), not live)
        if mirror.graveyard is not None:
            for key, obj in getattr(state, mirror.graveyard).items():
                puts.setdefault(key, Put(obj, upto, _deleted_at(obj, at), True))
        changes.puts[mirror.kind] = puts
    for app_id, release_ids in state.app_releases.items():
        for release_id in release_ids:
            changes.links[(app_id, release_id)] = (upto, True)
    return changes


def _deleted_at(obj: Any, at: datetime | None) -> datetime | None:
    stamped: datetime | None = getattr(obj, "updated_at", None)
    return stamped or at


def merge(batches: Iterable[Changes]) -> Changes | None:
    """Consecutive batches' changes as one (None for none): the newest Put of each key wins,
    keeping the deletion time an older batch saw."""
    merged: Changes | None = None
    for batch in batches:
        if merged is None:
            merged = attrs.evolve(
                batch,
                puts={kind: dict(puts) for kind, puts in batch.puts.items()},
                links=dict(batch.links),
            )
            continue
        assert batch.after == merged.upto, "merged batches are consecutive"
        for kind, puts in batch.puts.items():
            into = merged.puts.setdefault(kind, {})
            for key, put in puts.items():
                older = into.get(key)
                if put.deleted_earlier and older is not None and older.deleted_at is not None:
                    put = attrs.evolve(
                        put, deleted_at=older.deleted_at, deleted_earlier=older.deleted_earlier
                    )
                into[key] = put
        merged.links.update(batch.links)
        merged = attrs.evolve(
            merged,
            upto=batch.upto,
            at=batch.at,
            events=merged.events + batch.events,
            size=merged.size + batch.size,
        )
    return merged


def since(changes: Changes, position: int) -> Changes:
    """Only what changed after `position` (at or after changes.after), by the events that
    changed each object and link last."""
    if position <= changes.after:
        return changes
    puts = {
        kind: {key: put for key, put in by_key.items() if put.event_id > position}
        for kind, by_key in changes.puts.items()
    }
    links = {pair: link for pair, link in changes.links.items() if link[0] > position}
    return attrs.evolve(changes, after=position, puts=puts, links=links)
