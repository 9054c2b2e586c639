"""API key queries over State: every key made through the log, one by name, a live one by
its secret's hash."""

from __future__ import annotations

from domain.keys import Key
from projections.state import State


def all_keys(state: State) -> list[Key]:
    """Every key made through the log, revoked ones too, newest first."""
    return sorted(state.keys.values(), key=lambda k: (k.created_at, k.name), reverse=True)


def key_named(state: State, name: str) -> Key | None:
    return state.keys.get(name)


def live_key(state: State, secret_sha256: str) -> Key | None:
    """The unrevoked key whose secret has this hash (an expired one too: its request is
    refused by the caller, which knows the time)."""
    return state.live_keys.get(secret_sha256)
