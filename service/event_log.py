"""The service's event log: the one given (tests), or the PostgreSQL one at DATABASE_URL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from service.settings import Settings


@contextlib.asynccontextmanager
async def event_log(settings: Settings, given: EventStore | None) -> AsyncIterator[EventStore]:
    """`given` as is (not closed), else the log at DATABASE_URL, opened and closed."""
    if given is not None:
        yield given
        return
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    store = await PostgresEventStore.open(settings.database_url)
    try:
        yield store
    finally:
        await store.close()
