"""SqlReadModel: the log folded into PostgreSQL tables (schema `read_model`), and its queries.

Rows and the projection's position are written in one transaction per batch, which locks
the position row first: several projectors (one per controller process) may follow the
same log into the same tables, and none applies an event twice (house style 2.12.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson

from domain.codec import decode
from domain.events import Event
from domain.ids import canonical_uuid
from domain.objects import JSON
from eventstore.migrate import migrate
from eventstore.postgres import CONNECT_TIMEOUT, UNAVAILABLE
from eventstore.record import RecordedEvent
from eventstore.store import StoreUnavailableError
from projections.read_model import canonical_snapshot
from projections.sql_rows import Changes, Wants, fold, wants
from projections.sql_tables import (
    APPS,
    DEPLOYMENTS,
    FORMATIONS,
    RELEASES,
    RESOURCES,
    ROUTES,
    TABLES,
    Row,
    Table,
    upsert,
)

#: This projection's row in projection_positions.
NAME = "sql_read_model"


Decoded = tuple[RecordedEvent, Event]


def decoded(record: RecordedEvent) -> Decoded:
    """A record with its event: what apply_batch takes (decoded ahead, by the reader)."""
    return record, decode(record)


class PositionMovedBackError(Exception):
    """The stored position is behind the batch's start (the model was reset): start over."""

    def __init__(self, position: int) -> None:
        super().__init__(f"the {NAME} position moved back to {position}")
        self.position = position


_UPSERTS = {table.name: upsert(table) for table in TABLES}
_LINK = """
INSERT INTO read_model.app_releases (app_id, release_id, event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING
"""
_UNLINK = """
DELETE FROM read_model.app_releases
WHERE (app_id, release_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""
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
    """The read model in the `read_model` tables of the database behind `pool`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def migrate(self) -> None:
        """Create or upgrade the read model's tables."""
        async with self._connection() as conn:
            await migrate(conn, "projections", "projections")
            await conn.execute(_ENSURE_POSITION, NAME)

    # -- writing ---------------------------------------------------------------------

    async def apply_batch(self, after: int, batch: Sequence[Decoded]) -> tuple[int, int]:
        """Apply `batch`, the log's events right after id `after` (see `decoded`), in one
        transaction.

        Events at or below the stored position are skipped (another projector applied
        them). Returns (the position now, how many events this call applied).
        """
        async with self._connection() as conn, conn.transaction():
            stored: int | None = await conn.fetchval(_LOCK_POSITION, NAME)
            if stored is None:
                raise RuntimeError(f"no {NAME} row in projection_positions: run migrate()")
            if stored < after:
                raise PositionMovedBackError(stored)
            fresh = [item for item in batch if item[0].id > stored]
            if not fresh:
                return stored, 0
            changes = Changes()
            await _prefetch(conn, changes, wants(event for _, event in fresh))
            for record, event in fresh:
                fold(changes, event, record.created_at, record.id)
            await _write(conn, changes)
            position = fresh[-1][0].id
            await conn.execute(_SET_POSITION, NAME, position)
        return position, len(fresh)

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


async def _load(
    conn: asyncpg.Connection, c: Changes, table: Table, where: str, *args: Any
) -> list[Any]:
    rows = await conn.fetch(_ROWS.format(table=table.name, where=where), *args)
    keys = []
    for row in rows:
        obj = table.load(orjson.loads(row["doc_text"]), row)
        key = table.key_of(obj)
        c.loaded(table, key, Row(obj, row["event_id"], row.get("deleted_at")))
        keys.append(key)
    return keys


async def _load_keys(conn: asyncpg.Connection, c: Changes, table: Table, keys: set[str]) -> None:
    if keys:
        found = set(await _load(conn, c, table, "id = ANY($1::text[])", list(keys)))
        for key in keys - found:
            c.loaded(table, key, None)


async def _prefetch(conn: asyncpg.Connection, c: Changes, w: Wants) -> None:
    """Read the stored rows the fold of a batch looks at (see sql_rows.wants)."""
    await _load_keys(conn, c, APPS, w.apps)
    await _load_keys(conn, c, RELEASES, w.releases)
    await _load_keys(conn, c, DEPLOYMENTS, w.deployments)
    if w.formations:
        apps, releases = zip(*w.formations, strict=True)
        where = "(app_id, release_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        found = await _load(conn, c, FORMATIONS, where, list(apps), list(releases))
        for key in w.formations - set(found):
            c.loaded(FORMATIONS, key, None)
    if w.deleted_apps:
        # Everything an app's deletion changes (separate queries: each can use its index).
        deleted = list(w.deleted_apps)
        await _load(conn, c, FORMATIONS, "app_id = ANY($1::text[])", deleted)
        await _load(conn, c, RESOURCES, f"app_ids && $1::text[] AND {_LIVE}", deleted)
        await _load(conn, c, ROUTES, f"app_id = ANY($1::text[]) AND {_LIVE}", deleted)


async def _write(conn: asyncpg.Connection, c: Changes) -> None:
    for table in TABLES:
        rows = c.to_write(table)
        if rows:
            items = orjson.dumps([table.item(row) for row in rows]).decode()
            await conn.execute(_UPSERTS[table.name], items)
    if c.unlinked:
        apps, releases = zip(*c.unlinked, strict=True)
        await conn.execute(_UNLINK, list(apps), list(releases))
    if c.links:
        (apps, releases), event_ids = zip(*c.links, strict=True), list(c.links.values())
        await conn.execute(_LINK, list(apps), list(releases), event_ids)
