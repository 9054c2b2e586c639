"""Rebuilding state from the log in memory, up to an event id or a moment."""

from __future__ import annotations

from datetime import datetime

import attrs

from eventstore.record import RecordedEvent
from eventstore.store import LogReader
from projections.memory import MemoryReadModel, collector_paused
from replay.progress import Progress

#: Events folded per apply_records call.
BATCH = 2_000


@attrs.frozen
class Rebuilt:
    """A read model rebuilt from the log, and the commit time of its last event."""

    model: MemoryReadModel
    last_event_at: datetime | None

    @property
    def last_event_id(self) -> int:
        return self.model.last_id


async def rebuild(
    source: LogReader,
    *,
    until: int | None = None,
    at_time: datetime | None = None,
    progress: Progress | None = None,
) -> Rebuilt:
    """The read model after every event up to `until` and committed at or before `at_time`.

    Commit times grow with ids (they are taken under the append lock), so the first event
    after `at_time` ends the fold.
    """
    model = MemoryReadModel()
    batch: list[RecordedEvent] = []
    last_at = None
    with collector_paused():
        async for record in source.read(until=until):
            if at_time is not None and record.created_at > at_time:
                break
            batch.append(record)
            if len(batch) >= BATCH:
                _apply(model, batch, progress)
                last_at, batch = batch[-1].created_at, []
        if batch:
            _apply(model, batch, progress)
            last_at = batch[-1].created_at
    return Rebuilt(model, last_at)


def _apply(model: MemoryReadModel, batch: list[RecordedEvent], progress: Progress | None) -> None:
    model.apply_records(batch)
    if progress is not None:
        progress.reach(batch[-1].id)
