"""Events with actors, as scoped keys (issue 16) will record them: appended straight to the
log with an actor in their meta, so that the dashboard's reading of actors is tested now."""

from __future__ import annotations

from typing import Any

import attrs

from domain.codec import encode, encode_meta
from domain.events import AppReleaseSet, AppUpdated
from domain.objects import App, Release
from eventstore.postgres import PostgresEventStore


def actor(name: str) -> dict[str, str]:
    return {"key": name, "request_id": f"req-{name}", "address": "127.0.0.1", "user_agent": "test"}


async def append_as(database: str, who: str, *events: Any) -> int:
    """Append `events` with `who` as their actor; the id of the last."""
    store = await PostgresEventStore.open(database)
    try:
        meta = encode_meta({"actor": actor(who)})
        recorded = await store.append([attrs.evolve(encode(e), meta=meta) for e in events])
        return recorded[-1].id
    finally:
        await store.close()


def release_set(app: Any, release: Any, previous: Any = None) -> AppReleaseSet:
    """The event of `release` (Flynn JSON) becoming `app`'s current release."""
    return AppReleaseSet(
        app=app["id"],
        release=Release.from_json(release),
        prev_release=None if previous is None else Release.from_json(previous),
    )


def app_updated(app: Any, meta: dict[str, str]) -> AppUpdated:
    return AppUpdated(attrs.evolve(App.from_json(app), meta=meta))
