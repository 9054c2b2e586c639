"""Events appended straight to the log with an actor in their meta, as a write records it:
what happens while the service is down (the stream's resumption is tested with them)."""

from __future__ import annotations

from typing import Any

import attrs

from domain.codec import encode, encode_meta
from domain.events import AppUpdated
from domain.objects import App
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


def app_updated(app: Any, meta: dict[str, str]) -> AppUpdated:
    return AppUpdated(attrs.evolve(App.from_json(app), meta=meta))
