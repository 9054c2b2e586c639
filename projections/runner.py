"""Following the log: keep a read model up to date with what any process appends."""

from __future__ import annotations

import logging

from eventstore.store import EventStore
from projections.memory import MemoryReadModel

logger = logging.getLogger(__name__)


async def follow(store: EventStore, model: MemoryReadModel) -> None:
    """Fold every event appended after the model's position, forever.

    Events this process appended are folded by the dispatcher already; apply_records skips
    them by id. A failure is told to the model's followers and propagates: the caller
    marks the service unhealthy.
    """
    try:
        async for record in store.subscribe(after=model.last_id):
            if record.id > model.last_id:  # else the dispatcher folded it already
                model.apply_records([record])
    except Exception as exc:
        model.failed(exc)
        raise
