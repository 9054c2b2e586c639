"""SqlReadModel: the SQL read model (tables in schema `read_model`), a writer of the fold's
changes (projections.changes) and the queries over it.

It interprets no event: each write is the objects (and app-release links) that changed
since the position the tables hold, as the fold left them, with the new position, in one
transaction that locks the position row first (house style 2.12.3). Any number of writers
(one per controller process, see service/projector.py) may write the same tables: none
writes behind the position, and what one writes is whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs
import orjson

from domain.ids import canonical_uuid
from domain.objects import JSON
from eventstore.migrate import migrate
from eventstore.postgres import CONNECT_TIMEOUT, UNAVAILABLE
from eventstore.store import StoreUnavailableError
from projections.changes import Changes
from projections.read_model import canonical_snapshot
from projections.sql_tables import (
    BY_KIND,
    KEEP_LINKS,
    LINK,
    TABLES,
    UNLINK,
    UNLINK_OTHERS,
    Encoded,
    Table,
    forget_others,
    keys,
    none_encoded,
    statements,
    upsert,
)

#: This projection's row in projection_positions.
NAME = "sql_read_model"


@attrs.frozen
class Written:
    """What a write did: the position the tables hold now, and the rows and links it sent."""

    position: int
    rows: int = 0
    complete: bool = False  # it wrote everything there is (a resync)


_UPSERTS = {table.name: upsert(table) for table in TABLES}
_FORGET_OTHERS = {table.name: forget_others(table) for table in TABLES}
_ENSURE_POSITION = """
INSERT INTO projection_positions (name, last_event_id) VALUES ($1, 0) ON CONFLICT DO NOTHING
"""
_LOCK_POSITION = "SELECT last_event_id FROM projection_positions WHERE name = $1 FOR UPDATE"
_SET_POSITION = "UPDATE projection_positions SET last_event_id = $2 WHERE name = $1"
_POSITION = "SELECT last_event_id FROM projection_positions WHERE name = $1"
_TRUNCATE = "TRUNCATE " + ", ".join(
    f"read_model.{name}" for name in [t.name for t in TABLES] + ["app_releases"]
)

_ROWS = "SELECT t.*, t.doc::text AS doc_text FROM read_model.{table} t WHERE {where}"
_LIVE = "deleted_at IS NULL"
_NEWEST = "ORDER BY created_at DESC, id DESC"
# By id or name; ordered so that the id wins when a ref is both (then LIMIT 1).
_BY_REF = (
    "SELECT doc::text FROM read_model.{table} WHERE {live} (id = $1 OR name = $2) "
    "ORDER BY (id = $1) IS TRUE DESC LIMIT 1"
)


def _select(table: str, where: str = "true", order: str = _NEWEST) -> str:
    return f"SELECT doc::text FROM read_model.{table} WHERE {where} {order}"


def _ref(ref: str) -> tuple[str | None, str]:
    """A ref as ($1, $2) of _BY_REF: the id it means (if uuid-shaped), and the name."""
    return canonical_uuid(ref), ref


class SqlReadModel:
    """The read model in the `read_model` tables of the database behind `pool`; a writer
    takes each object's JSON from `encoded` when it has it (the fold's, already made)."""

    def __init__(self, pool: asyncpg.Pool, encoded: Encoded = none_encoded) -> None:
        self._pool = pool
        self._encoded = encoded

    async def migrate(self) -> None:
        """Create or upgrade the read model's tables."""
        async with self._connection() as conn:
            await migrate(conn, "projections", "projections")
            await conn.execute(_ENSURE_POSITION, NAME)

    # -- writing ---------------------------------------------------------------------

    async def write(
        self, changes_since: Callable[[int], Changes | None], *, reset: bool = False
    ) -> Written:
        """Write what `changes_since(position)` says changed after the position the tables
        hold (None, or changes up to no later position: nothing to write), and its end as
        the new position, in one transaction. With `reset`, the tables are emptied first
        and the position is 0 (for everything there is).

        `changes_since` runs holding the position row's lock: no other writer moves it
        meanwhile. Changes that do not start at or before the position must be complete.
        """
        async with self._connection() as conn, conn.transaction():
            stored: int | None = await conn.fetchval(_LOCK_POSITION, NAME)
            if stored is None:
                raise RuntimeError(f"no {NAME} row in projection_positions: run migrate()")
            if reset:
                await conn.execute(_TRUNCATE)
                stored = 0
            changes = changes_since(stored)
            if changes is None or changes.upto <= stored:
                if reset:
                    await conn.execute(_SET_POSITION, NAME, 0)
                return Written(stored)
            if changes.after > stored and not changes.complete:
                raise ValueError(f"changes after {changes.after} leave a gap after {stored}")
            rows = await _write(conn, changes, self._encoded)
            await conn.execute(_SET_POSITION, NAME, changes.upto)
        return Written(changes.upto, rows, changes.complete)

    async def reset(self) -> None:
        """Empty every table and go back to position 0, at once for every reader."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_ENSURE_POSITION, NAME)
            await conn.fetchval(_LOCK_POSITION, NAME)
            await conn.execute(_TRUNCATE)
            await conn.execute(_SET_POSITION, NAME, 0)

    # -- queries ---------------------------------------------------------------------

    async def last_event_id(self) -> int:
        async with self._connection() as conn:
            position: int | None = await conn.fetchval(_POSITION, NAME)
        return position or 0

    async def app(self, ref: str) -> JSON | None:
        """A live app by id or name: a uuid-shaped ref is an id first (Flynn's rule)."""
        return await self._one(_BY_REF.format(table="apps", live=f"{_LIVE} AND"), *_ref(ref))

    async def apps(self) -> list[JSON]:
        return await self._list(_select("apps", _LIVE))

    async def release(self, release_id: str) -> JSON | None:
        return await self._one(_select("releases", f"id = $1 AND {_LIVE}"), release_id)

    async def releases(self) -> list[JSON]:
        return await self._list(_select("releases", _LIVE))

    async def app_releases(self, app_id: str) -> list[JSON]:
        linked = "id IN (SELECT release_id FROM read_model.app_releases WHERE app_id = $1)"
        return await self._list(_select("releases", f"{linked} AND {_LIVE}"), app_id)

    async def artifact(self, artifact_id: str) -> JSON | None:
        return await self._one(_select("artifacts", "id = $1"), artifact_id)

    async def artifacts(self) -> list[JSON]:
        return await self._list(_select("artifacts"))

    async def formation(self, app_id: str, release_id: str) -> JSON | None:
        where = f"app_id = $1 AND release_id = $2 AND {_LIVE}"
        return await self._one(_select("formations", where, order=""), app_id, release_id)

    async def app_formations(self, app_id: str) -> list[JSON]:
        # Formations have no id of their own: the release id breaks ties.
        order = "ORDER BY created_at DESC, release_id DESC"
        return await self._list(_select("formations", f"app_id = $1 AND {_LIVE}", order), app_id)

    async def jobs(self, app_id: str) -> list[JSON]:
        return await self._list(_select("jobs", "app_id = $1"), app_id)

    async def job(self, job_id: str) -> JSON | None:
        return await self._one(_select("jobs", "id = $1"), job_id)

    async def routes(self, app_id: str) -> list[JSON]:
        return await self._list(_select("routes", f"app_id = $1 AND {_LIVE}"), app_id)

    async def route(self, route_id: str) -> JSON | None:
        return await self._one(_select("routes", f"id = $1 AND {_LIVE}"), route_id)

    async def deployments(self, app_id: str) -> list[JSON]:
        return await self._list(_select("deployments", "app_id = $1"), app_id)

    async def deployment(self, deployment_id: str) -> JSON | None:
        return await self._one(_select("deployments", "id = $1"), deployment_id)

    async def providers(self) -> list[JSON]:
        return await self._list(_select("providers"))

    async def provider(self, ref: str) -> JSON | None:
        """A provider by id or name (the same rule as apps)."""
        return await self._one(_BY_REF.format(table="providers", live=""), *_ref(ref))

    async def resource(self, resource_id: str) -> JSON | None:
        return await self._one(_select("resources", f"id = $1 AND {_LIVE}"), resource_id)

    async def resources(self, provider_id: str) -> list[JSON]:
        where = f"provider_id = $1 AND {_LIVE}"
        return await self._list(_select("resources", where), provider_id)

    async def app_resources(self, app_id: str) -> list[JSON]:
        where = f"app_ids @> ARRAY[$1::text] AND {_LIVE}"  # @>: the GIN index serves it
        return await self._list(_select("resources", where), app_id)

    async def domain_migrations(self) -> list[JSON]:
        return await self._list(_select("domain_migrations"))

    async def snapshot(self) -> JSON:
        """Every object of every kind, as of one position (see read_model.canonical_snapshot)."""
        async with (
            self._connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            position = await conn.fetchval(_POSITION, NAME) or 0
            kinds: dict[str, dict[str, JSON]] = {}
            for table in TABLES:
                for row in await conn.fetch(_ROWS.format(table=table.name, where="true")):
                    _snapshot_row(kinds, table, row)
            links = await conn.fetch("SELECT app_id, release_id FROM read_model.app_releases")
        app_releases: dict[str, list[str]] = {}
        for link in links:
            app_releases.setdefault(link["app_id"], []).append(link["release_id"])
        return canonical_snapshot(position, kinds, app_releases)

    # -- plumbing --------------------------------------------------------------------

    def _connection(self) -> Any:
        return _Connection(self._pool)

    async def _one(self, sql: str, *args: Any) -> JSON | None:
        async with self._connection() as conn:
            text = await conn.fetchval(sql, *args)
        return None if text is None else orjson.loads(text)  # type: ignore[no-any-return, unused-ignore]

    async def _list(self, sql: str, *args: Any) -> list[JSON]:
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *args)
        return [orjson.loads(row[0]) for row in rows]


class _Connection:
    """A pooled connection whose "database unreachable" errors become StoreUnavailableError."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._acquire = pool.acquire(timeout=CONNECT_TIMEOUT)

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return await self._acquire.__aenter__()
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(f"the read model is unavailable: {exc}") from exc

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        await self._acquire.__aexit__(kind, exc, tb)
        if isinstance(exc, UNAVAILABLE):
            raise StoreUnavailableError(f"the read model is unavailable: {exc}") from exc


def _snapshot_row(kinds: dict[str, dict[str, JSON]], table: Table, row: Any) -> None:
    deleted = row.get("deleted_at") is not None
    if deleted and table.name not in ("apps", "formations"):
        return  # the in-memory model forgets deleted routes and resources
    key = row["id"] if len(table.key) == 1 else f"{row['app_id']}:{row['release_id']}"
    kind = f"deleted_{table.name}" if deleted else table.name
    kinds.setdefault(kind, {})[key] = orjson.loads(row["doc_text"])


async def _write(conn: asyncpg.Connection, changes: Changes, encoded: Encoded) -> int:
    """Write `changes` (see SqlReadModel.write); returns how many rows and links it sent."""
    rows = 0
    for kind, puts in changes.puts.items():
        table = BY_KIND[kind]
        for statement in statements(table, puts, encoded):
            await conn.execute(_UPSERTS[kind], statement)
        rows += len(puts)
        if changes.complete:
            await conn.execute(_FORGET_OTHERS[kind], *keys(table, puts), *_gone(table, changes))
    linked = [(pair, event_id) for pair, (event_id, now) in changes.links.items() if now]
    if changes.complete:
        apps, releases = _columns([pair for pair, _ in linked])
        await conn.execute(UNLINK_OTHERS, apps, releases)
        await conn.execute(KEEP_LINKS, apps, releases, [event_id for _, event_id in linked])
    else:
        unlinked = [pair for pair, (_, now) in changes.links.items() if not now]
        if unlinked:
            await conn.execute(UNLINK, *_columns(unlinked))
        if linked:
            apps, releases = _columns([pair for pair, _ in linked])
            await conn.execute(LINK, apps, releases, [event_id for _, event_id in linked])
    return rows + len(changes.links)


def _gone(table: Table, changes: Changes) -> list[Any]:
    """forget_others' arguments after the keys: when and by what its rows were deleted."""
    return [changes.at, changes.upto] if table.soft_delete else []


def _columns(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [app for app, _ in pairs], [release for _, release in pairs]
