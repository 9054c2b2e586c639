"""What changed between two points of the log: the differences of two states, and the
events between them with who caused each (their `meta.actor`, where the write recorded one).
"""

from __future__ import annotations

from typing import Any

from domain.actors import Actor
from domain.codec import decode, decode_meta
from domain.timefmt import format_time
from eventstore.record import EventFilter, RecordedEvent
from eventstore.store import LogReader
from projections.apps import find_app_or_deleted
from projections.read_model import MemoryQueries
from replay.fold import Rebuilt
from replay.history import summary
from replay.views import app_view, resolve_app, state_document

JSON = dict[str, Any]

#: Events listed at most between two points (the differences cover them all).
MAX_EVENTS = 1_000

#: Which kinds of events change which part of an app (Flynn's object types).
SECTIONS: dict[str, tuple[str, ...]] = {
    "release": ("app_release", "release", "release_deletion"),
    "env": ("app_release", "release"),
    "formation": ("scale", "app_release"),
    "routes": ("route", "route_deletion"),
    "resources": ("resource", "resource_deletion", "resource_app_deletion"),
    "app": ("app", "app_deletion"),
}


def actor(record: RecordedEvent) -> JSON | None:
    """Who caused the event, as its write recorded it (`meta.actor`, as event envelopes show
    it: without the client's address and user agent, the audit's to show), else None."""
    if record.meta is None:
        return None
    recorded = Actor.from_json(decode_meta(record.meta).get("actor"))
    return None if recorded is None else recorded.public_json()


def point(rebuilt: Rebuilt) -> JSON:
    at = rebuilt.last_event_at
    return {"event_id": rebuilt.last_event_id, "at": format_time(at) if at else None}


def entry(record: RecordedEvent) -> JSON:
    """One event as the time machine lists it."""
    return {
        "id": record.id,
        "type": record.type,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "app": record.app_id,
        "created_at": format_time(record.created_at),
        "summary": summary(decode(record)),
        "actor": actor(record),
    }


async def events_between(
    source: LogReader,
    after: int,
    until: int,
    app_id: str | None,
    limit: int = MAX_EVENTS,
    hidden: frozenset[str] = frozenset(),
) -> tuple[list[JSON], bool]:
    """The events with after < id <= until (of one app if given, none of the `hidden`
    object types), oldest first, at most `limit`; and whether there were more."""
    found: list[JSON] = []
    wanted = EventFilter(app_id=app_id, hidden_types=hidden)
    async for record in source.read(after=after, until=until, filter=wanted):
        if len(found) >= limit:
            return found, True
        found.append(entry(record))
    return found, False


# -- differences -------------------------------------------------------------------------


def _by_id(items: list[JSON]) -> dict[str, JSON]:
    return {item["id"]: item for item in items}


def _objects(before: list[JSON], after: list[JSON]) -> JSON | None:
    old, new = _by_id(before), _by_id(after)
    doc = {
        "added": [new[k] for k in new if k not in old],
        "removed": [old[k] for k in old if k not in new],
        "changed": [
            {"before": old[k], "after": new[k]} for k in new if k in old and old[k] != new[k]
        ],
    }
    return doc if any(doc.values()) else None


def _mapping(before: dict[str, Any], after: dict[str, Any]) -> JSON | None:
    changed = {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }
    return changed or None


def _formation(view: JSON | None) -> dict[str, int]:
    """The processes the app's current release is scaled to."""
    if view is None or view["release"] is None:
        return {}
    release_id = view["release"]["id"]
    for formation in view["formations"]:
        if formation.get("release") == release_id:
            return dict(formation.get("processes") or {})
    return {}


def app_diff(before: JSON | None, after: JSON | None) -> JSON:
    """What differs between two views of one app (replay.views.app_view; None: absent)."""
    doc: JSON = {}
    old_release = (before or {}).get("release") or {}
    new_release = (after or {}).get("release") or {}
    if old_release.get("id") != new_release.get("id"):
        doc["release"] = {"before": old_release.get("id"), "after": new_release.get("id")}
    if env := _mapping(old_release.get("env") or {}, new_release.get("env") or {}):
        doc["env"] = env
    if formation := _mapping(_formation(before), _formation(after)):
        doc["formation"] = formation
    for part in ("routes", "resources"):
        if diff := _objects((before or {}).get(part, []), (after or {}).get(part, [])):
            doc[part] = diff
    if (before is None) != (after is None) or (
        before and after and before["deleted"] != after["deleted"]
    ):
        doc["app"] = {
            "before": "absent" if before is None else "deleted" if before["deleted"] else "live",
            "after": "absent" if after is None else "deleted" if after["deleted"] else "live",
        }
    return doc


def platform_diff(before: JSON, after: JSON) -> JSON:
    """Apps added and removed between two platform states, and each app's differences."""
    old = {view["app"]["id"]: view for view in before["apps"]}
    new = {view["app"]["id"]: view for view in after["apps"]}
    changed = {}
    for app_id in old.keys() | new.keys():
        diff = app_diff(old.get(app_id), new.get(app_id))
        if diff:
            view = new.get(app_id) or old[app_id]
            changed[app_id] = {"name": view["app"]["name"], "changes": diff}
    return {
        "added": sorted(new[a]["app"]["name"] for a in new.keys() - old.keys()),
        "removed": sorted(old[a]["app"]["name"] for a in old.keys() - new.keys()),
        "apps": changed,
    }


def who_changed(changes: JSON, events: list[JSON]) -> JSON:
    """For each changed part of an app, the events between the points that touch it."""
    return {
        part: [e["id"] for e in events if e["object_type"] in SECTIONS[part]]
        for part in changes
        if part in SECTIONS
    }


# -- two points compared -----------------------------------------------------------------


async def _view(rebuilt: Rebuilt, app_id: str) -> JSON | None:
    app = find_app_or_deleted(rebuilt.model.state, app_id)
    return None if app is None else await app_view(MemoryQueries(rebuilt.model), app)


async def compare(
    source: LogReader,
    before: Rebuilt,
    after: Rebuilt,
    app_ref: str | None = None,
    hidden: frozenset[str] = frozenset(),
) -> JSON:
    """What changed from `before` to `after` (of the app `app_ref` names at the later
    point, else at the earlier one), and the events between (none of the `hidden` object
    types) with their actors.

    Raises LookupError when `app_ref` names an app at neither point.
    """
    app: JSON | None = None
    if app_ref is None:
        diff = platform_diff(await state_document(before), await state_document(after))
    else:
        found = resolve_app(after.model.state, app_ref) or resolve_app(before.model.state, app_ref)
        if found is None:
            raise LookupError(f"no app {app_ref!r} at event {after.last_event_id}")
        old, new = await _view(before, found.id), await _view(after, found.id)
        diff, app = app_diff(old, new), found.to_json()
    app_id = None if app is None else app["id"]
    events, truncated = await events_between(
        source, before.last_event_id, after.last_event_id, app_id, hidden=hidden
    )
    return {
        "from": point(before),
        "to": point(after),
        "app": app,
        "changes": diff,
        "by": who_changed(diff, events) if app else {},
        "events": events,
        "truncated": truncated,
    }
