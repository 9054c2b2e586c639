"""The `make_store` factory: every contract test runs against both backends."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent
from eventstore.store import EventStore

StoreFactory = Callable[[], Awaitable[EventStore]]

APP_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
APP_B = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"


def ev(
    object_id: str = "x",
    *,
    object_type: str = "app",
    app_id: str | None = None,
    unique_id: str | None = None,
    data: bytes = b'{"n":1}',
    type: str = "AppCreated",
) -> NewEvent:
    return NewEvent(type, object_type, object_id, app_id, data, unique_id=unique_id)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Callable[[], Awaitable[str]] | None:
    """None for the in-memory store, else the factory of fresh Postgres databases."""
    # Resolved here, outside the event loop, because the session's Postgres fixtures are sync.
    if request.param == "postgres":
        return request.getfixturevalue("make_database")  # type: ignore[no-any-return]
    return None


@pytest.fixture
async def make_store(
    backend: Callable[[], Awaitable[str]] | None,
) -> AsyncIterator[StoreFactory]:
    """An async factory of fresh, empty stores of one backend, closed after the test."""
    stores: list[EventStore] = []
    make_database = backend

    async def factory() -> EventStore:
        store: EventStore
        if make_database is None:
            store = InMemoryEventStore()
        else:
            store = await PostgresEventStore.open(await make_database())
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()
