"""The SQL read model's tables: how an object maps to each, and the statements writing them.

Pure: no I/O (projections.sql runs the statements).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import orjson

from domain.objects import JSON
from projections.changes import KINDS, Put

#: An object's JSON as bytes if the caller has it at hand (the fold keeps the JSON of the
#: objects it served or was written), else None.
Encoded = Callable[[Any], bytes | None]


def none_encoded(obj: Any) -> None:
    """No JSON at hand: every object is encoded."""
    return None


#: Rows written by one statement, at most ...
WRITE_ROWS = 5_000
#: ... and about this many bytes of their JSON (one row at least): a resync writes every
#: object there is, and only a statement's worth is held encoded at a time.
WRITE_BYTES = 16 * 1024 * 1024


@attrs.frozen
class Table:
    """A table of read_model. Its columns are SQL expressions over `d`, the row's doc read
    as a record of `doc_fields`: computed by the database, they cannot disagree with the
    doc. Besides the doc, a row carries event_id, deleted_at (if `soft_delete`) and the
    `extra` columns the doc lacks."""

    name: str  # also the kind of object it holds (projections.changes.KINDS)
    key: tuple[str, ...]
    doc_fields: str  # json_to_record's column definitions
    columns: tuple[tuple[str, str], ...]  # (column, SQL expression over d)
    soft_delete: bool = False
    extra: tuple[tuple[str, str, Callable[[Any], Any]], ...] = ()  # (column, type, of object)

    def item(self, put: Put, encoded: Encoded = none_encoded) -> JSON:
        """What the database needs to write `put` (json_to_recordset's input); its doc as
        `encoded` gives it, if it does (not encoded again)."""
        known = encoded(put.obj)
        doc = put.obj.to_json() if known is None else orjson.Fragment(known)
        item: JSON = {"event_id": put.event_id, "doc": doc}
        if self.soft_delete:
            item["deleted_at"] = put.deleted_at
            item["earlier"] = put.deleted_earlier
        for name, _, value in self.extra:
            item[name] = value(put.obj)
        return item


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    """Columns named as the doc's keys."""
    return tuple((name, f"d.{name}") for name in names)


_T = "timestamptz"
# Route.app_id: an app's route has parent_ref "controller/apps/<app id>".
_ROUTE_APP_ID = "CASE WHEN d.parent_ref LIKE 'controller/apps/%' THEN substr(d.parent_ref, 17) END"
APPS = Table(
    "apps",
    ("id",),
    f"id text, name text, release text, created_at {_T}, updated_at {_T}",
    (*_same("id", "name"), ("release_id", "d.release"), *_same("created_at", "updated_at")),
    soft_delete=True,
)
RELEASES = Table(
    "releases",
    ("id",),
    f"id text, app_id text, artifact text, created_at {_T}",
    (*_same("id", "app_id"), ("artifact_id", "d.artifact"), *_same("created_at")),
    soft_delete=True,
)
ARTIFACTS = Table(
    "artifacts",
    ("id",),
    f"id text, type text, uri text, created_at {_T}",
    _same("id", "type", "uri", "created_at"),
)
FORMATIONS = Table(
    "formations",
    ("app_id", "release_id"),
    f"app text, release text, created_at {_T}, updated_at {_T}",
    (("app_id", "d.app"), ("release_id", "d.release"), *_same("created_at", "updated_at")),
    soft_delete=True,
)
JOBS = Table(
    "jobs",
    ("id",),
    f"id text, app text, release text, type text, state text, created_at {_T}, updated_at {_T}",
    (
        ("id", "d.id"),
        ("app_id", "d.app"),
        ("release_id", "d.release"),
        ("type", "coalesce(d.type, '')"),
        *_same("state", "created_at", "updated_at"),
    ),
)
DEPLOYMENTS = Table(
    "deployments",
    ("id",),
    f"id text, app text, old_release text, new_release text, status text, "
    f"created_at {_T}, finished_at {_T}",
    (
        ("id", "d.id"),
        ("app_id", "d.app"),
        ("old_release_id", "d.old_release"),
        ("new_release_id", "d.new_release"),
        *_same("status", "created_at", "finished_at"),
    ),
    extra=(("error", "text", lambda deployment: deployment.error),),
)
PROVIDERS = Table(
    "providers",
    ("id",),
    f"id text, name text, url text, created_at {_T}, updated_at {_T}",
    _same("id", "name", "url", "created_at", "updated_at"),
)
RESOURCES = Table(
    "resources",
    ("id",),
    f"id text, provider text, apps json, created_at {_T}",
    (
        ("id", "d.id"),
        ("provider_id", "d.provider"),
        ("app_ids", "ARRAY(SELECT json_array_elements_text(coalesce(d.apps, '[]')))"),
        ("created_at", "d.created_at"),
    ),
    soft_delete=True,
)
ROUTES = Table(
    "routes",
    ("id",),
    f"id text, type text, parent_ref text, service text, domain text, path text, "
    f"port integer, created_at {_T}, updated_at {_T}",
    (
        *_same("id", "type"),
        ("app_id", _ROUTE_APP_ID),
        ("parent_ref", "coalesce(d.parent_ref, '')"),
        ("service", "coalesce(d.service, '')"),
        ("domain", "coalesce(d.domain, '')"),
        ("path", "coalesce(d.path, '')"),
        ("port", "coalesce(d.port, 0)"),
        *_same("created_at", "updated_at"),
    ),
    soft_delete=True,
)
DOMAIN_MIGRATIONS = Table(
    "domain_migrations",
    ("id",),
    f"id text, old_domain text, domain text, created_at {_T}, finished_at {_T}",
    _same("id", "old_domain", "domain", "created_at", "finished_at"),
)

TABLES = (
    APPS,
    RELEASES,
    ARTIFACTS,
    FORMATIONS,
    JOBS,
    DEPLOYMENTS,
    PROVIDERS,
    RESOURCES,
    ROUTES,
    DOMAIN_MIGRATIONS,
)
BY_KIND = {table.name: table for table in TABLES}
assert set(BY_KIND) == set(KINDS), "one table per kind of object the fold's changes name"


def upsert(table: Table) -> str:
    """The statement writing rows of `table`, given as one JSON array of Table.item()s:
    cheaper to send than an array per column, and the key columns come from the doc.

    A row whose doc, deletion and extra columns are what the table holds already is left
    alone (its event_id stays that of the event that last changed it). A row deleted
    before the changes it comes with keeps the deletion time the table holds, if any.
    """
    given = [("event_id", "bigint")]
    given += [("deleted_at", "timestamptz"), ("earlier", "boolean")] if table.soft_delete else []
    given += [(name, type_) for name, type_, _ in table.extra]
    stored = [name for name, _ in given if name not in ("event_id", "earlier")]
    names = [name for name, _ in table.columns] + ["event_id", *stored, "doc"]
    values = [expr for _, expr in table.columns] + ["r.event_id"]
    values += [_deleted_at(table) if name == "deleted_at" else f"r.{name}" for name in stored]
    record = ", ".join(f"{name} {type_}" for name, type_ in given)
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in table.key)
    mine = ", ".join(f"t.{name}" for name in ["doc::text", *stored])
    theirs = ", ".join(f"excluded.{name}" for name in ["doc::text", *stored])
    return (
        f"INSERT INTO read_model.{table.name} AS t ({', '.join(names)}) "
        f"SELECT {', '.join(values)}, r.doc "
        f"FROM json_to_recordset($1::text::json) AS r({record}, doc json), "
        f"json_to_record(r.doc) AS d({table.doc_fields}) "
        f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates} "
        f"WHERE ({mine}) IS DISTINCT FROM ({theirs})"
    )


def _deleted_at(table: Table) -> str:
    columns = dict(table.columns)
    match = " AND ".join(f"o.{name} = {columns[name]}" for name in table.key)
    stored = f"(SELECT o.deleted_at FROM read_model.{table.name} o WHERE {match})"
    return f"CASE WHEN r.earlier THEN coalesce({stored}, r.deleted_at) ELSE r.deleted_at END"


def keys(table: Table, puts: dict[Any, Put]) -> list[list[Any]]:
    """The keys of `puts` as one array per key column (for unnest)."""
    if len(table.key) == 1:
        return [list(puts)]
    return [list(column) for column in zip(*puts, strict=True)] if puts else [[], []]


def forget_others(table: Table) -> str:
    """The statement that, after everything there is was written (a resync), marks deleted
    (or, without soft deletion, deletes) the rows whose keys are not in $1.. (unnest)."""
    arrays = ", ".join(f"${n + 1}::text[]" for n in range(len(table.key)))
    at = len(table.key) + 1
    match = " AND ".join(f"k.{name} = t.{name}" for name in table.key)
    others = f"NOT EXISTS (SELECT FROM unnest({arrays}) AS k({', '.join(table.key)}) WHERE {match})"
    if not table.soft_delete:
        return f"DELETE FROM read_model.{table.name} t WHERE {others}"
    return (
        f"UPDATE read_model.{table.name} t SET deleted_at = ${at}, event_id = ${at + 1} "
        f"WHERE deleted_at IS NULL AND {others}"
    )


def statements(
    table: Table, puts: dict[Any, Put], encoded: Encoded = none_encoded
) -> Iterator[str]:
    """The JSON arrays of Table.item()s that write `puts`, WRITE_ROWS and WRITE_BYTES at most."""
    items: list[bytes] = []
    size = 0
    for put in puts.values():
        item = orjson.dumps(table.item(put, encoded))
        if items and (len(items) >= WRITE_ROWS or size + len(item) > WRITE_BYTES):
            yield "[" + b",".join(items).decode() + "]"
            items, size = [], 0
        items.append(item)
        size += len(item)
    if items:
        yield "[" + b",".join(items).decode() + "]"


# The app-release links: (app_id, release_id) arrays, and event ids.
LINK = """
INSERT INTO read_model.app_releases (app_id, release_id, event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
ON CONFLICT (app_id, release_id) DO UPDATE SET event_id = excluded.event_id
"""
# A resync knows no link's first event: the ones the table holds keep theirs.
KEEP_LINKS = """
INSERT INTO read_model.app_releases (app_id, release_id, event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING
"""
UNLINK = """
DELETE FROM read_model.app_releases
WHERE (app_id, release_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""
UNLINK_OTHERS = """
DELETE FROM read_model.app_releases l WHERE NOT EXISTS (
    SELECT FROM unnest($1::text[], $2::text[]) AS k(app_id, release_id)
    WHERE k.app_id = l.app_id AND k.release_id = l.release_id)
"""
