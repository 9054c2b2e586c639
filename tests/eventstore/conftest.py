"""The `make_store` factory: every contract test runs against both backends."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from eventstore.record import NewEvent
from eventstore.store import EventStore
from tests.backends import MakeDatabase, open_log

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


@pytest.fixture
async def make_store(
    log_backend: MakeDatabase | None,
) -> AsyncIterator[StoreFactory]:
    """An async factory of fresh, empty stores of one backend, closed after the test."""
    stores: list[EventStore] = []

    async def factory() -> EventStore:
        store = await open_log(log_backend)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()
