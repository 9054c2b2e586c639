"""InMemoryEventStore: the log in a Python list, for fast tests; behaves like the Postgres store."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import orjson

from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent
from eventstore.store import (
    PAGE_SIZE,
    ConcurrencyError,
    EventRefusedError,
    IdempotencyKeyTakenError,
    check_events,
)


class InMemoryEventStore:
    """A list of recorded events, a set of used unique ids, and a wake-up for subscribers."""

    def __init__(self) -> None:
        self._events: list[RecordedEvent] = []
        self._ids: list[int] = []  # parallel to _events, for bisect
        self._unique_ids: set[str] = set()
        self._idempotency_keys: set[str] = set()  # as the Postgres store's unique index
        self._appended = asyncio.Event()
        self._closed = False

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        return self._append(events, expected_last_id)

    def _append(
        self, events: Sequence[NewEvent], expected_last_id: int | None
    ) -> list[RecordedEvent]:
        check_events(events)
        keys = set()
        for event in events:
            try:
                orjson.loads(event.data)
                meta = None if event.meta is None else orjson.loads(event.meta)
            except orjson.JSONDecodeError as exc:  # Postgres refuses it too (json column)
                raise EventRefusedError(f"the event log refused the events: {exc}") from exc
            key = _first_key(meta)
            if key is not None:
                if key in self._idempotency_keys or key in keys:
                    raise IdempotencyKeyTakenError(f"Idempotency-Key {key!r} is taken")
                keys.add(key)
        head = self._ids[-1] if self._ids else 0
        if expected_last_id is not None and expected_last_id != head:
            raise ConcurrencyError(expected_last_id, head)
        # Never decreasing, like clock_timestamp() taken under the Postgres store's lock.
        now = datetime.now(UTC)
        if self._events and now < self._events[-1].created_at:
            now = self._events[-1].created_at
        recorded: list[RecordedEvent] = []
        taken: set[str] = set()
        for event in events:
            if event.unique_id is not None:
                if event.unique_id in self._unique_ids or event.unique_id in taken:
                    continue
                taken.add(event.unique_id)
            head += 1
            recorded.append(RecordedEvent.of(event, head, now))
        self._unique_ids |= taken
        self._idempotency_keys |= keys
        self._events.extend(recorded)
        self._ids.extend(e.id for e in recorded)
        # Wake every waiting subscriber, then arm a fresh event for the next append.
        self._appended.set()
        self._appended = asyncio.Event()
        return recorded

    async def append_after(
        self, after: int, decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]]
    ) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
        # No await from the read to the append: nothing else can append in between.
        seen = self._after(after, None, ALL_EVENTS)
        events = decide(seen)
        return seen, self._append(events, None) if events else []

    async def last_id(self) -> int:
        return self._ids[-1] if self._ids else 0

    async def get(self, event_id: int) -> RecordedEvent | None:
        i = bisect.bisect_left(self._ids, event_id)
        if i < len(self._ids) and self._ids[i] == event_id:
            return self._events[i]
        return None

    def _after(self, after: int, until: int | None, filter: EventFilter) -> list[RecordedEvent]:
        start = bisect.bisect_right(self._ids, after)
        stop = len(self._ids) if until is None else bisect.bisect_right(self._ids, until)
        events = self._events[start:stop]
        return events if filter.is_all else [e for e in events if filter.matches(e)]

    async def read(
        self,
        after: int = 0,
        *,
        until: int | None = None,
        filter: EventFilter = ALL_EVENTS,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RecordedEvent]:
        for event in self._after(after, until, filter):
            yield event

    async def read_backward(
        self,
        *,
        before_id: int | None = None,
        since_id: int | None = None,
        count: int | None = None,
        filter: EventFilter = ALL_EVENTS,
    ) -> AsyncIterator[RecordedEvent]:
        until = None if before_id is None else before_id - 1
        events = self._after(since_id or 0, until, filter)
        events.reverse()
        for event in events if count is None else events[:count]:
            yield event

    async def subscribe(
        self, after: int = 0, filter: EventFilter = ALL_EVENTS
    ) -> AsyncIterator[RecordedEvent]:
        cursor = after
        while not self._closed:
            appended = self._appended
            head = self._ids[-1] if self._ids else 0
            for event in self._after(cursor, head, filter):
                yield event
            cursor = max(cursor, head)
            if self._ids and self._ids[-1] > cursor:
                continue  # appended while we were yielding
            await appended.wait()

    async def close(self) -> None:
        self._closed = True
        self._appended.set()


def _first_key(meta: object) -> str | None:
    """The Idempotency-Key a command's first event holds (the one with its request)."""
    if isinstance(meta, dict) and isinstance(meta.get("request"), dict):
        key = meta.get("idempotency_key")
        if isinstance(key, str):
            return key
    return None
