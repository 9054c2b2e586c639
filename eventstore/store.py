"""The EventStore port: what every backend of the log promises, and the errors it raises."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent

#: Rows fetched per round trip when a read is streamed in pages.
PAGE_SIZE = 10_000

# Limits of what the log stores, checked by both backends before an append is queued, so
# that they refuse the same input and the database never has to (one refusal there fails
# a whole group-committed batch before it is written again member by member).
#: Longest object id or unique id, in UTF-8 bytes: far above the ids this service makes
#: (uuids, job ids, "<app>:<release>") and far below what one btree index entry holds.
MAX_ID_BYTES = 512
#: Longest type, object type or op (names of this code's own event kinds).
MAX_NAME_BYTES = 64
#: Largest meta object, in bytes (an Idempotency-Key and the request it came with).
MAX_META_BYTES = 16 * 1024
#: Largest event: payload and meta, in bytes. Above the largest request body
#: (MAX_BODY_SIZE, 10 MiB) plus what the service adds to an object.
MAX_EVENT_BYTES = 16 * 1024 * 1024

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


class OutcomeUnknownError(StoreError):
    """The append was sent, and the database stopped answering before it said whether it
    committed; nor could that be found out afterwards. It may commit yet."""


class EventRefusedError(StoreError, ValueError):
    """The log refuses these events (too large, malformed): nothing was written."""


class IdempotencyKeyTakenError(StoreError):
    """An event's meta holds an Idempotency-Key that a write in the log already holds:
    nothing was written."""


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
        """Every event after `after` that matches, in id order, once each: backlog, then live.

        The events of an append through this store reach its subscribers only after the
        append has returned them, in the appender's task: an appender that folds them
        before its next await has folded them before any subscriber sees them.
        """
        ...

    async def close(self) -> None: ...


def check_events(events: Sequence[NewEvent]) -> None:
    """Reject what no backend may store; run before an append is queued.

    EventRefusedError names the limit; a TypeError or an empty list is a bug of the caller.
    """
    if not events:
        raise ValueError("append needs at least one event")
    for event in events:
        if not isinstance(event, NewEvent):
            raise TypeError(f"expected NewEvent, got {type(event).__name__}")
        check_event(event)


def check_event(event: NewEvent) -> None:
    """EventRefusedError if `event` breaks one of the log's limits."""
    if event.app_id is not None and not _CANONICAL_UUID.fullmatch(event.app_id):
        raise EventRefusedError(f"app_id {event.app_id!r} is not a canonical uuid")
    _check_text("object_id", event.object_id, MAX_ID_BYTES)
    if event.unique_id is not None:
        _check_text("unique_id", event.unique_id, MAX_ID_BYTES)
    _check_text("type", event.type, MAX_NAME_BYTES)
    _check_text("object_type", event.object_type, MAX_NAME_BYTES)
    if event.op is not None:
        _check_text("op", event.op, MAX_NAME_BYTES)
    size = len(event.data)
    if event.meta is not None:
        if len(event.meta) > MAX_META_BYTES:
            raise EventRefusedError(
                f"the event's meta is {len(event.meta)} bytes, more than {MAX_META_BYTES}"
            )
        size += len(event.meta)
    if size > MAX_EVENT_BYTES:
        raise EventRefusedError(
            f"the {event.object_type} event is {size} bytes, more than {MAX_EVENT_BYTES}"
        )


def _check_text(name: str, value: str, limit: int) -> None:
    # A PostgreSQL text column holds UTF-8 without NUL; a lone surrogate has no UTF-8 form.
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            raise EventRefusedError(f"{name} is not valid Unicode") from None
    if size > limit:
        raise EventRefusedError(f"{name} is {size} bytes long, more than {limit}")
    if "\x00" in value:
        raise EventRefusedError(f"{name} holds a NUL character")


__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_ID_BYTES",
    "MAX_META_BYTES",
    "MAX_NAME_BYTES",
    "PAGE_SIZE",
    "ConcurrencyError",
    "EventRefusedError",
    "EventStore",
    "IdempotencyKeyTakenError",
    "NewEvent",
    "OutcomeUnknownError",
    "RecordedEvent",
    "StoreError",
    "StoreUnavailableError",
    "check_event",
    "check_events",
]
