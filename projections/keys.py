"""API key queries over State: every key made through the log, and one by name (a live key
is found by its secret's hash in `State.live_keys`, one dict look-up: controller/auth.py)."""

from __future__ import annotations

from domain.keys import Key
from projections.state import State


def all_keys(state: State) -> list[Key]:
    """Every key made through the log, revoked ones too, newest first."""
    return sorted(state.keys.values(), key=lambda k: (k.created_at, k.name), reverse=True)


def key_named(state: State, name: str) -> Key | None:
    return state.keys.get(name)
