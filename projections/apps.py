"""App queries over State: one app by id or name, and the list."""

from __future__ import annotations

from domain.ids import canonical_uuid
from domain.objects import App
from projections.order import newest_first
from projections.state import State


def find_app(state: State, ref: str) -> App | None:
    """A live app by id or name, with Flynn's rule for which one a reference means: a
    uuid-shaped reference (with or without dashes) is an id first."""
    app_id = canonical_uuid(ref)
    if app_id is not None and app_id in state.apps:
        return state.apps[app_id]
    return state.app_named(ref)


def find_app_or_deleted(state: State, ref: str) -> App | None:
    """A live app by id or name (find_app), else a deleted app by its id: what a deleted
    app's history (events, job reports) is still reached by. A name is a live app's only."""
    app = find_app(state, ref)
    if app is not None:
        return app
    app_id = canonical_uuid(ref.lower())
    return None if app_id is None else state.deleted_apps.get(app_id)


def all_apps(state: State) -> list[App]:
    """Every live app, newest first (Flynn: appListQuery)."""
    return newest_first(state.apps.values())
