"""Following the log: keep a read model up to date with what any process appends."""

from __future__ import annotations

import logging

from eventstore.store import EventStore
from projections.memory import MemoryReadModel

logger = logging.getLogger(__name__)


async def follow(store: EventStore, model: MemoryReadModel) -> None:
    """Fold every event appended after the model's position, forever.

    Events this process appended are folded by the dispatcher already; apply_records skips
    them by id. A failure propagates: the caller marks the service unhealthy.
    """
    async for record in store.subscribe(after=model.last_id):
        model.apply_records([record])
