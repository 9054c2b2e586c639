"""MemoryReadModel: the fold of the whole log in memory; every GET is served from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson

from eventstore.codec import decode
from eventstore.events import Event
from eventstore.objects import App, Artifact, Release
from eventstore.record import RecordedEvent
from eventstore.store import EventStore
from projections.state import State, apply, find_app, find_provider

T = TypeVar("T")
APPLY_BATCH = 1000


def newest_first(objects: Iterable[T], key: Callable[[T], Any]) -> list[T]:
    """Flynn's `ORDER BY created_at DESC`, with a deterministic tie-break."""
    return sorted(objects, key=key, reverse=True)


def _by_created(obj: Any) -> tuple[Any, str]:
    return (obj.created_at, obj.id)


class MemoryReadModel:
    """State plus the id of the last event folded into it, and encoded-JSON caches."""

    def __init__(self) -> None:
        self.state = State()
        self.last_id = 0
        self.generation = 0  # bumped on every applied batch: list caches key on it
        self._changed = asyncio.Event()
        self._encoded: dict[Any, tuple[object, bytes]] = {}
        self._lists: dict[str, tuple[int, bytes]] = {}

    # -- following the log -------------------------------------------------------------

    def apply_records(self, records: Iterable[RecordedEvent]) -> list[tuple[RecordedEvent, Event]]:
        """Fold the events not folded yet (by id); returns them decoded, in order."""
        applied = []
        for record in records:
            if record.id <= self.last_id:
                continue
            event = decode(record)
            apply(self.state, event, record.created_at)
            self.last_id = record.id
            applied.append((record, event))
        if applied:
            self.generation += 1
            self._changed.set()
            self._changed = asyncio.Event()
        return applied

    async def catch_up(self, store: EventStore) -> int:
        """Fold everything the log holds beyond last_id; returns how many events."""
        batch: list[RecordedEvent] = []
        count = 0
        async for record in store.read(after=self.last_id):
            batch.append(record)
            if len(batch) >= APPLY_BATCH:
                count += len(self.apply_records(batch))
                batch = []
        return count + len(self.apply_records(batch))

    async def changed(self) -> None:
        """Wait until the next batch of events is folded."""
        await self._changed.wait()

    async def reached(self, event_id: int) -> None:
        """Wait until the event `event_id` is folded."""
        while self.last_id < event_id:
            await self.changed()

    # -- encoded JSON --------------------------------------------------------------------

    def encode(self, obj: Any) -> bytes:
        """obj.to_json() as bytes, encoded once per object (objects are immutable)."""
        key = (type(obj), getattr(obj, "id", None) or id(obj))
        cached = self._encoded.get(key)
        if cached is not None and cached[0] is obj:
            return cached[1]
        data = orjson.dumps(obj.to_json())
        self._encoded[key] = (obj, data)
        return data

    def encode_list(self, objects: Sequence[Any]) -> bytes:
        return b"[" + b",".join(self.encode(obj) for obj in objects) + b"]"

    def cached_list(self, name: str, build: Callable[[], Sequence[Any]]) -> bytes:
        """An encoded list, rebuilt only after the log moved."""
        cached = self._lists.get(name)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        data = self.encode_list(build())
        self._lists[name] = (self.generation, data)
        return data

    # -- queries -------------------------------------------------------------------------

    def app(self, ref: str) -> App | None:
        return find_app(self.state, ref)

    def apps(self) -> list[App]:
        return newest_first(self.state.apps.values(), _by_created)

    def artifact(self, artifact_id: str) -> Artifact | None:
        return self.state.artifacts.get(artifact_id)

    def artifact_by_key(self, type_: str, uri: str) -> Artifact | None:
        found = self.state.artifact_ids_by_key.get((type_, uri))
        return None if found is None else self.state.artifacts[found]

    def artifacts(self) -> list[Artifact]:
        return newest_first(self.state.artifacts.values(), _by_created)

    def release(self, release_id: str) -> Release | None:
        return self.state.releases.get(release_id)

    def releases(self) -> list[Release]:
        return newest_first(self.state.releases.values(), _by_created)

    def app_releases(self, app_id: str) -> list[Release]:
        ids = self.state.app_releases.get(app_id, {})
        return newest_first((self.state.releases[r] for r in ids), _by_created)

    def provider(self, ref: str) -> Any:
        return find_provider(self.state, ref)
