"""Versioned, idempotent schema migrations: numbered .sql files applied once, under a lock."""

from __future__ import annotations

import importlib.resources
import re

import asyncpg

_FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer Evenflow than this one."""


def sql_files(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every `NNNN_name.sql` in `<package>/sql`, in version order."""
    found = []
    for entry in importlib.resources.files(package).joinpath("sql").iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: asyncpg.Connection, component: str, package: str) -> list[int]:
    """Apply the pending migrations of `component`; returns the versions applied now."""
    files = sql_files(package)
    known = {version for version, _, _ in files}
    applied_now = []
    async with conn.transaction():
        # Several processes may start at once: one migrates, the others wait and find it done.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('evenflow_schema_migrations'))")
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch(
            "SELECT version FROM schema_migrations WHERE component = $1", component
        )
        applied = {row["version"] for row in rows}
        if applied - known:
            raise SchemaTooNewError(
                f"the database has {component} schema version {max(applied)}, "
                f"newer than this code knows ({max(known, default=0)})"
            )
        for version, name, sql in files:
            if version in applied:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)",
                component,
                version,
                name,
            )
            applied_now.append(version)
    return applied_now
