"""The two backends of the log, for tests that run on each: see the `log_backend` fixture."""

from collections.abc import Awaitable, Callable

from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore

#: The factory of fresh Postgres databases (the `make_database` fixture): None for the
#: in-memory log.
MakeDatabase = Callable[[], Awaitable[str]]


async def open_log(backend: MakeDatabase | None) -> EventStore:
    """A fresh, empty log: in memory if `backend` is None, else on a new Postgres database."""
    if backend is None:
        return InMemoryEventStore()
    return await PostgresEventStore.open(await backend())
