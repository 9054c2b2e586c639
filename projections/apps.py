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


def all_apps(state: State) -> list[App]:
    """Every live app, newest first (Flynn: appListQuery)."""
    return newest_first(state.apps.values())
