"""Fixtures of the projection tests: a Postgres log whose database also holds the read model."""

from collections.abc import AsyncIterator

import pytest

from eventstore.postgres import PostgresEventStore
from projections.sql import SqlReadModel


@pytest.fixture
async def pg_store(database_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await PostgresEventStore.open(database_url)
    yield store
    await store.close()


@pytest.fixture
async def sql_model(pg_store: PostgresEventStore) -> SqlReadModel:
    """The SQL read model in the log's database (migrated, at position 0)."""
    model = SqlReadModel(pg_store.pool)
    await model.migrate()
    return model
