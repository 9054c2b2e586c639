"""Following the log: keep a read model up to date with what any process appends."""

from __future__ import annotations

import logging

from eventstore.store import EventStore
from projections.memory import MemoryReadModel

logger = logging.getLogger(__name__)


async def follow(store: EventStore, model: MemoryReadModel) -> None:
    """Fold every event appended after the model's position, forever: the model hands
    each to its followers.

    Events this process appended are folded by the dispatcher as its append returns, before
    the store's subscribers hear of them (see EventStore.subscribe); they are skipped here
    by id. A failure is told to the model's followers and propagates: the caller marks the
    service unhealthy.
    """
    try:
        async for record in store.subscribe(after=model.last_id):
            if record.id > model.last_id:
                model.apply_records([record])
    except Exception as exc:
        model.failed(exc)
        raise
