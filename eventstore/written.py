"""The Postgres store's memory of its own latest appends, for its own subscribers."""

from __future__ import annotations

from collections import deque

from eventstore.record import RecordedEvent

#: Events kept of what the store wrote lately, so its own subscribers need not read them
#: back from the database ...
WRITTEN_EVENTS = 10_000
#: ... and bytes of their payloads: large events are read back instead of held.
WRITTEN_BYTES = 16 * 1024 * 1024


class Written:
    """The batches this store wrote lately: (the head each was planned against, its events).

    A subscriber of this store that is woken by its own append finds those events here
    instead of reading them back from the database. Only a chain of batches, each planned
    against the last one's end, proves that nobody else wrote in between. Bounded by events
    and by bytes; a batch beyond the bounds is not kept at all.
    """

    def __init__(self, limit: int = WRITTEN_EVENTS, limit_bytes: int = WRITTEN_BYTES) -> None:
        self.limit = limit
        self.limit_bytes = limit_bytes
        self._by_base: dict[int, list[RecordedEvent]] = {}
        self._order: deque[tuple[int, int]] = deque()  # (base, bytes)
        self._events = 0
        self.bytes = 0

    def add(self, base: int, records: list[RecordedEvent]) -> None:
        size = sum(len(record.data) for record in records)
        self._by_base[base] = records
        self._order.append((base, size))
        self._events += len(records)
        self.bytes += size
        while self._order and (
            (self._events > self.limit and len(self._order) > 1) or self.bytes > self.limit_bytes
        ):
            oldest, oldest_size = self._order.popleft()
            self._events -= len(self._by_base.pop(oldest))
            self.bytes -= oldest_size

    def between(self, after: int, until: int) -> list[RecordedEvent] | None:
        """Every event with after < id <= until if this store wrote all of them, else None."""
        found: list[RecordedEvent] = []
        cursor = after
        while cursor < until:
            batch = self._by_base.get(cursor)
            if batch is None:
                return None
            found += batch
            cursor = batch[-1].id
        if cursor > until:  # cannot happen while the head is read after _seen_head; be exact
            found = [record for record in found if record.id <= until]
        return found
