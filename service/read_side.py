"""The fold of the log in a service process: a read model caught up with the log (from a
snapshot, if one fits) and following it, with the dispatcher writing on top and the SQL
read model written from it."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from commands.dispatch import Dispatcher
from eventstore.store import EventStore
from projections.memory import MemoryReadModel
from projections.runner import follow
from service.projector import sql_projection
from service.settings import Settings
from service.snapshots import initial_model, save_if_due
from service.tasks import Health, background

logger = logging.getLogger(__name__)

#: The follower's name in the health status.
HEALTH_NAME = "read_model"


@contextlib.asynccontextmanager
async def read_side(
    settings: Settings, store: EventStore, health: Health
) -> AsyncIterator[tuple[MemoryReadModel, Dispatcher]]:
    """Fold the log (from a snapshot, if any), then keep folding it; run the dispatcher on
    top. At the end, write a new snapshot if one is due."""
    began = time.monotonic()
    model = await initial_model(settings, store)
    since = model.last_id
    # The SQL read model follows the fold from before its catch-up, and writes what is left
    # once the dispatcher stopped.
    async with sql_projection(store, model, health):
        count = await model.catch_up(store)
        logger.info(
            "read model at event %d (%d events folded, from %s, in %.2f s)",
            model.last_id,
            count,
            f"a snapshot at event {since}" if since else "the start",
            time.monotonic() - began,
        )
        dispatcher = Dispatcher(store, model)
        dispatcher.start()
        async with background(HEALTH_NAME, lambda: follow(store, model), health):
            yield model, dispatcher
        await dispatcher.stop()
    await save_if_due(settings, store, model, since)
