"""Fixtures of the service tests: a Postgres log of the test's own."""

from collections.abc import AsyncIterator

import pytest

from eventstore.postgres import PostgresEventStore


@pytest.fixture
async def pg_store(database_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await PostgresEventStore.open(database_url)
    yield store
    await store.close()
