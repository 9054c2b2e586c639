"""Builds the schema of the template database that every test database is cloned from."""

import asyncpg

from eventstore.migrate import migrate


async def prepare_template(dsn: str) -> None:
    """Create the schema in the (empty) database at `dsn`.

    Called once per test session. Close every connection and pool before returning:
    PostgreSQL refuses to copy a template that has open connections.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, "eventstore", "eventstore")
        await migrate(conn, "projections", "projections")
    finally:
        await conn.close()
