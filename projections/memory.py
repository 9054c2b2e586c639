"""MemoryReadModel: the fold of the whole log in memory; every GET is served from it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs
import orjson

from domain.codec import compact, decode
from domain.events import (
    AppCreated,
    AppUpdated,
    ArtifactCreated,
    Event,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    RouteCreated,
    RouteUpdated,
)
from eventstore.record import RecordedEvent
from eventstore.store import EventStore
from projections import causes, idempotency
from projections.changes import Changes, Mark, extract
from projections.state import State, apply

APPLY_BATCH = 2000
#: Bytes of encoded objects kept (see encode): above it the cache starts over, which also
#: lets go of the encodings of objects replaced or deleted since.
ENCODED_BYTES = 64 * 1024 * 1024
#: Bytes of encoded lists kept (see cached_list); a longer list is encoded every time.
LISTS_BYTES = 32 * 1024 * 1024


@attrs.frozen
class Folded:
    """A batch the model folded: its records with their events, in log order, and what it
    changed (see projections.changes; None unless a follower wants changes)."""

    pairs: list[tuple[RecordedEvent, Event]]
    changes: Changes | None


class Follower(Protocol):
    """Something that follows the model's fold in-process (the event streams, the SQL
    read model's writer): it is handed each batch folded, whoever folded it."""

    #: Of how many of the log's newest events it wants the changes (0: none). Journaling a
    #: batch costs time: a catch-up does it only near the head (see catch_up).
    wants_changes: int

    def applied(self, folded: Folded) -> None:
        """Called with each batch the model folded, in log order and without gaps."""

    def failed(self, error: BaseException) -> None:
        """Called once when the model can no longer follow the log."""


#: Events whose payload is exactly their object's JSON (`data()` is `obj.to_json()`), and
#: which put that very object into the state: the payload is the object's encoding.
_PAYLOAD_IS_OBJECT: dict[type, str] = {
    AppCreated: "app",
    AppUpdated: "app",
    ReleaseCreated: "release",
    ArtifactCreated: "artifact",
    JobStateChanged: "job",
    ProviderCreated: "provider",
    RouteCreated: "route",
    RouteUpdated: "route",
}

#: A catch-up of at least this many events freezes what it folded (see catch_up).
FREEZE_AFTER = 100_000


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk fold.

    A fold creates millions of objects that all stay alive: every collection pass walks
    all of them and frees nothing (a third of a 1M-event fold's time). Nothing a fold
    creates is cyclic garbage, so collecting later is as good.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class MemoryReadModel:
    """State plus the id of the last event folded into it, and encoded-JSON caches."""

    def __init__(self) -> None:
        self.state = State()
        self.last_id = 0
        self.last_at: datetime | None = None  # the commit time of event last_id, if known
        self.generation = 0  # bumped on every applied batch: list caches key on it
        self._changed = asyncio.Event()
        self._encoded: dict[Any, tuple[object, bytes]] = {}
        self._encoded_bytes = 0  # bytes put into _encoded since it last started over
        self._lists: dict[str, tuple[int, bytes]] = {}
        self._followers: list[Follower] = []

    # -- following the log -------------------------------------------------------------

    def apply_records(
        self,
        records: Iterable[RecordedEvent],
        decoded: Sequence[Event] | None = None,
        *,
        journal: bool = True,
    ) -> list[tuple[RecordedEvent, Event]]:
        """Fold the events not folded yet (by id); returns them decoded, in order, after
        handing them to the followers.

        `decoded`, when given, holds each record's event already (the dispatcher has the
        events it decided): decoding them again from their bytes would give equal events.
        The objects these writes put into the state are then encoded already, too: their
        event's payload is their JSON, which the response to the write is made of.
        Without `journal`, the batch's changes are not told even to followers wanting them.
        """
        after, state = self.last_id, self.state
        assert state.journal is None, "a fold inside a speculative one"
        log: list[Mark] | None = None
        if journal and self._changes_wanted:
            state.record()
            log = []
        try:
            applied = self._fold(records, decoded, log)
            changes = None
            if applied and log is not None and state.journal is not None:
                size = sum(len(record.data) for record, _ in applied)
                changes = extract(state, state.journal, log, after, size)
        finally:
            state.stop_recording()
        if applied:
            self.generation += 1
            self._changed.set()
            self._changed = asyncio.Event()
            if self._followers:
                folded = Folded(applied, changes)
                for follower in self._followers:
                    follower.applied(folded)
        return applied

    def _fold(
        self,
        records: Iterable[RecordedEvent],
        decoded: Sequence[Event] | None,
        marks: list[Mark] | None,
    ) -> list[tuple[RecordedEvent, Event]]:
        applied = []
        state, last_id = self.state, self.last_id
        for n, record in enumerate(records):
            if record.id <= last_id:
                continue
            if decoded is None:
                event = decode(record)
            else:
                event = decoded[n]
                attribute = _PAYLOAD_IS_OBJECT.get(type(event))
                if attribute is not None:
                    obj = getattr(event, attribute)
                    self._keep_encoded((type(obj), obj.id), obj, record.data)
            if marks is not None and state.journal is not None:
                marks.append((len(state.journal), record.id, record.created_at))
            apply(state, event, record.created_at)
            causes.fold(state.causes, record, event)
            if record.meta is not None:
                idempotency.fold(state.idempotency, record)
            last_id = record.id
            applied.append((record, event))
        self.last_id = last_id
        if applied:
            self.last_at = applied[-1][0].created_at
        if applied and state.idempotency:
            idempotency.forget_before(state.idempotency, applied[-1][0].created_at)
        return applied

    async def catch_up(self, store: EventStore) -> int:
        """Fold everything the log holds beyond last_id; returns how many events.

        The batches' changes are journaled only within the newest events followers want
        them of (Follower.wants_changes): they would keep no older ones.
        """
        batch: list[RecordedEvent] = []
        count = 0
        wanted = self._changes_wanted
        journal_from = (await store.last_id()) - wanted if wanted else 0
        with collector_paused():
            async for record in store.read(after=self.last_id):
                batch.append(record)
                if len(batch) >= APPLY_BATCH:
                    journal = bool(wanted) and batch[-1].id > journal_from
                    count += len(self.apply_records(batch, journal=journal))
                    batch = []
            count += len(self.apply_records(batch))
            if count >= FREEZE_AFTER:
                # Frozen, the state folded at start-up is skipped by every later collection:
                # no full pass over millions of live objects while serving (a pause of
                # hundreds of ms). Only after a big fold: freezing also keeps any cyclic
                # garbage of the moment alive, which a small catch-up must not do often.
                gc.freeze()
        return count

    # -- in-process followers ------------------------------------------------------------

    def add_follower(self, follower: Follower) -> None:
        """Hand `follower` every batch folded from now on (see Follower)."""
        self._followers.append(follower)

    def remove_follower(self, follower: Follower) -> None:
        with contextlib.suppress(ValueError):
            self._followers.remove(follower)

    @property
    def _changes_wanted(self) -> int:
        return max((follower.wants_changes for follower in self._followers), default=0)

    def failed(self, error: BaseException) -> None:
        """The log can no longer be followed: tell the followers (runner.follow calls it)."""
        for follower in list(self._followers):
            follower.failed(error)

    async def changed(self) -> None:
        """Wait until the next batch of events is folded."""
        await self._changed.wait()

    async def reached(self, event_id: int, timeout: float | None = None) -> bool:
        """Wait until the event `event_id` is folded, at most `timeout` seconds (None: no
        bound); whether it is. Returns at once, without a pause, when it is already."""
        if self.last_id >= event_id:
            return True
        try:
            async with asyncio.timeout(timeout):
                while self.last_id < event_id:
                    await self.changed()
        except TimeoutError:
            return False
        return True

    # -- encoded JSON --------------------------------------------------------------------

    def encode(self, obj: Any) -> bytes:
        """obj.to_json() as bytes, encoded once per object (objects are immutable)."""
        key = (type(obj), getattr(obj, "id", None) or id(obj))
        cached = self._encoded.get(key)
        if cached is not None and cached[0] is obj:
            return cached[1]
        data = compact(orjson.dumps(obj.to_json()))  # kept: see compact
        self._keep_encoded(key, obj, data)
        return data

    def encoded(self, obj: Any) -> bytes | None:
        """obj's JSON if it was encoded (or written) lately, else None; encodes nothing."""
        cached = self._encoded.get((type(obj), getattr(obj, "id", None) or id(obj)))
        return cached[1] if cached is not None and cached[0] is obj else None

    def _keep_encoded(self, key: Any, obj: object, data: bytes) -> None:
        self._encoded_bytes += len(data)
        if self._encoded_bytes > ENCODED_BYTES:
            self._encoded.clear()
            self._encoded_bytes = len(data)
        self._encoded[key] = (obj, data)

    def encode_list(self, objects: Sequence[Any]) -> bytes:
        return b"[" + b",".join(self.encode(obj) for obj in objects) + b"]"

    def cached_list(self, name: str, build: Callable[[], Sequence[Any]]) -> bytes:
        """An encoded list, rebuilt only after the log moved."""
        cached = self._lists.get(name)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        data = self.encode_list(build())
        if len(data) + sum(len(body) for _, body in self._lists.values()) > LISTS_BYTES:
            self._lists.clear()
        if len(data) <= LISTS_BYTES:
            self._lists[name] = (self.generation, data)
        return data
