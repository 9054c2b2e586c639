"""RecentChanges: what the read model's latest batches changed, kept so that a writer of the
SQL read model can write what changed since the position the SQL model holds."""

from __future__ import annotations

from collections import deque

from projections.changes import Changes, merge, since
from projections.memory import Folded

#: Events whose changes are kept, at most ...
CHANGES_EVENTS = 20_000
#: ... and bytes of their payloads: the objects a change holds are about as large.
CHANGES_BYTES = 16 * 1024 * 1024


class RecentChanges:
    """A follower of a MemoryReadModel (projections.memory.Follower): the changes of its
    latest folded batches, without gaps, from position `start` on, bounded by events and
    bytes (the oldest go first)."""

    def __init__(
        self, start: int, limit: int = CHANGES_EVENTS, limit_bytes: int = CHANGES_BYTES
    ) -> None:
        self.start = start  # the batches cover the log from here to `end`
        self.end = start
        self.wants_changes = limit
        self.limit_bytes = limit_bytes
        self._batches: deque[Changes] = deque()
        self._events = 0
        self._bytes = 0

    def applied(self, folded: Folded) -> None:
        changes = folded.changes
        if changes is None or changes.after != self.end:
            # Folded without its changes (an early part of a catch-up): nothing before it
            # can be told any more.
            self._forget_all(folded.pairs[-1][0].id)
            return
        self._batches.append(changes)
        self.end = changes.upto
        self._events += changes.events
        self._bytes += changes.size
        while self._batches and (
            self._events > self.wants_changes or self._bytes > self.limit_bytes
        ):
            self._drop_oldest()

    def failed(self, error: BaseException) -> None:
        pass  # the writer notices: the model's position stops moving

    def since(self, position: int) -> Changes | None:
        """What changed after `position` up to `end`, or None if that is not known
        (`position` is before `start`, or beyond `end`)."""
        if not self.start <= position <= self.end:
            return None
        merged = merge(batch for batch in self._batches if batch.upto > position)
        return Changes(self.end, self.end, None) if merged is None else since(merged, position)

    def forget(self, position: int) -> None:
        """Let go of the batches up to `position` (the SQL model holds them)."""
        while self._batches and self._batches[0].upto <= position:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        oldest = self._batches.popleft()
        self.start = oldest.upto
        self._events -= oldest.events
        self._bytes -= oldest.size

    def _forget_all(self, position: int) -> None:
        self._batches.clear()
        self.start = self.end = position
        self._events = self._bytes = 0
