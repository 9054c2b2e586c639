"""Keeps the SQL read model current: a background task follows the log into its tables.

Only with the Postgres log (the in-memory one has no database to project into). While the
database is unavailable the task waits and tries again; any other failure is logged and
reported in the health status, and the task stops rather than serve a wrong model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from controller import keys
from controller.workers import worker_index
from eventstore.postgres import PostgresEventStore
from eventstore.store import StoreUnavailableError
from projections.sql import SqlReadModel
from projections.sql_projector import SqlProjector

logger = logging.getLogger(__name__)

#: The component's name in the health status.
HEALTH_NAME = "sql_projector"
#: Seconds between attempts while the database is unavailable: doubling, up to the max.
RETRY_MIN = 0.5
RETRY_MAX = 2.0  # the health status recovers this soon after the database does
#: Seconds the projector lets appends gather between its transactions (it serves no GET;
#: per append, its transactions took a fifth of the service's CPU under single writes).
PACE = 0.05


async def sql_projector_context(app: web.Application) -> AsyncIterator[None]:
    store = app[keys.STORE]
    # With `serve --workers N` the first worker projects: one projector per machine does
    # the work once (several would all decode every event, and contend for the position).
    if not isinstance(store, PostgresEventStore) or worker_index() not in (None, 0):
        yield
        return
    task = asyncio.create_task(project(store, app[keys.HEALTH]), name="evenflow-sql-projector")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def project(store: PostgresEventStore, health: dict[str, str]) -> None:
    """Migrate the read model and follow the log into it, until cancelled or broken."""
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
        except Exception as exc:
            logger.exception("SQL projector failed")
            health[HEALTH_NAME] = f"failed: {exc!r}"
            return
