"""The EventStore port: what every backend of the log promises, and the errors it raises."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent

#: Rows fetched per round trip when a read is streamed in pages.
PAGE_SIZE = 10_000

# app_id is a uuid column in Postgres; checking the canonical form up front makes both
# backends refuse the same input, before it can fail a whole group-committed batch.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class StoreError(Exception):
    """Base class of the log's own errors."""


class ConcurrencyError(StoreError):
    """`expected_last_id` did not match the log head: nothing was written."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected the log head at {expected}, found {actual}")
        self.expected = expected
        self.actual = actual


class StoreUnavailableError(StoreError):
    """The database cannot be reached. The append was not acknowledged; retrying is safe."""


class EventStore(Protocol):
    """An append-only, totally ordered log.

    Ids strictly increase and id order is commit order: once a reader sees id N, every
    event with a smaller id is already visible, and none will appear later. Ids may have
    holes; never assume id + 1.
    """

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        """Write `events` atomically and return those written (a duplicate `unique_id` is skipped).

        With `expected_last_id`, write only if the log head is that id, else raise
        ConcurrencyError and write nothing.
        """
        ...

    async def append_after(
        self, after: int, decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]]
    ) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
        """Append what `decide` makes of the log's newest events, with no append in between.

        Holding the log's write lock: reads every event after `after`, calls `decide` (a
        plain function: it must not await) with them, and appends the events it returns
        atomically (a duplicate `unique_id` is skipped). Returns (the events read, the events
        written). Never a ConcurrencyError: this is how a writer whose optimistic appends
        keep losing races to other processes makes progress. An exception from `decide`
        writes nothing and propagates.
        """
        ...

    async def last_id(self) -> int:
        """The id of the newest event, 0 for an empty log."""
        ...

    async def get(self, event_id: int) -> RecordedEvent | None: ...

    def read(
        self,
        after: int = 0,
        *,
        until: int | None = None,
        filter: EventFilter = ALL_EVENTS,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RecordedEvent]:
        """Events with after < id <= until, ascending, fetched page by page."""
        ...

    def read_backward(
        self,
        *,
        before_id: int | None = None,
        since_id: int | None = None,
        count: int | None = None,
        filter: EventFilter = ALL_EVENTS,
    ) -> AsyncIterator[RecordedEvent]:
        """Events with since_id < id < before_id, newest first, at most `count`."""
        ...

    def subscribe(
        self, after: int = 0, filter: EventFilter = ALL_EVENTS
    ) -> AsyncIterator[RecordedEvent]:
        """Every event after `after` that matches, in id order, once each: backlog, then live."""
        ...

    async def close(self) -> None: ...


def check_events(events: Sequence[NewEvent]) -> None:
    """Reject what no backend may store; run before an append is queued."""
    if not events:
        raise ValueError("append needs at least one event")
    for event in events:
        if not isinstance(event, NewEvent):
            raise TypeError(f"expected NewEvent, got {type(event).__name__}")
        if event.app_id is not None and not _CANONICAL_UUID.fullmatch(event.app_id):
            raise ValueError(f"app_id {event.app_id!r} is not a canonical uuid")


__all__ = [
    "PAGE_SIZE",
    "ConcurrencyError",
    "EventStore",
    "NewEvent",
    "RecordedEvent",
    "StoreError",
    "StoreUnavailableError",
    "check_events",
]
