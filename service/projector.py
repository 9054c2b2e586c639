"""Keeps the SQL read model current: a background task follows the log into its tables.

Only with the Postgres log (the in-memory one has no database to project into). While the
database is unavailable the task waits and tries again; any other failure is logged and
reported in the health status (service/tasks.py), and the task stops rather than serve a
wrong model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore, StoreUnavailableError
from projections.sql import SqlReadModel
from projections.sql_projector import SqlProjector
from service.supervisor import worker_index
from service.tasks import Health, background

logger = logging.getLogger(__name__)

#: The component's name in the health status.
HEALTH_NAME = "sql_projector"
#: Seconds between attempts while the database is unavailable: doubling, up to the max.
RETRY_MIN = 0.5
RETRY_MAX = 2.0  # the health status recovers this soon after the database does
#: Seconds the projector lets appends gather between its transactions (it serves no GET;
#: per append, its transactions took a fifth of the service's CPU under single writes).
PACE = 0.05


@contextlib.asynccontextmanager
async def sql_projector(store: EventStore, health: Health) -> AsyncIterator[None]:
    """The SQL projector running in the background while the block runs, if this process
    runs one."""
    # With `serve --workers N` the first worker projects: one projector per machine does
    # the work once (several would all decode every event, and contend for the position).
    if not isinstance(store, PostgresEventStore) or worker_index() not in (None, 0):
        yield
        return
    async with background(HEALTH_NAME, project(store, health), health):
        yield


async def project(store: PostgresEventStore, health: Health) -> None:
    """Migrate the read model and follow the log into it, until cancelled or broken (a
    failure other than the database's unavailability is raised)."""
    delay = RETRY_MIN
    while True:
        try:
            model = SqlReadModel(store.pool)
            await model.migrate()
            health[HEALTH_NAME] = ""
            delay = RETRY_MIN
            projector = SqlProjector(store, model)
            projector.pace = PACE
            await projector.run()
        except StoreUnavailableError as exc:
            # The position is in the database: the next attempt resumes where this stopped.
            logger.warning("SQL projector waiting for the database (%s)", exc)
            health[HEALTH_NAME] = f"unavailable: {exc}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
