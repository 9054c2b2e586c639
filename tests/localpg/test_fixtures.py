import os
from collections.abc import Awaitable, Callable

import asyncpg


async def test_database_url_is_a_fresh_database(database_url: str) -> None:
    """Each test gets its own, writable database cloned from the template."""
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval("select current_database()")
        assert name in database_url
        assert name.startswith("t_")
        await conn.execute("create table scratch (x int)")
    finally:
        await conn.close()


async def test_databases_are_isolated(
    database_url: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    """Tables made in one test database are not visible in another."""
    other = await make_database()
    assert other != database_url
    a = await asyncpg.connect(database_url)
    b = await asyncpg.connect(other)
    try:
        await a.execute("create table scratch (x int)")
        assert await b.fetchval("select to_regclass('scratch')") is None
    finally:
        await a.close()
        await b.close()


async def test_databases_are_dropped(
    pg_dsn: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    """Databases of earlier tests have been dropped."""
    await make_database()
    conn = await asyncpg.connect(pg_dsn)
    try:
        names = await conn.fetch(
            "select datname from pg_database where datname like $1", f"t\\_{os.getpid()}\\_%"
        )
        assert len(names) == 1
    finally:
        await conn.close()
