"""The SQL read model's tables: how a row maps to each, and the statement writing a batch.

Pure: no I/O (projections.sql runs the statements).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from domain.objects import (
    JSON,
    App,
    Artifact,
    Deployment,
    DomainMigration,
    Formation,
    Job,
    Provider,
    Release,
    Resource,
    Route,
)
from domain.timefmt import parse_time


@attrs.define
class Row:
    """An object as one row holds it: the object, when it was deleted, the last event."""

    obj: Any
    event_id: int
    deleted_at: datetime | None = None


@attrs.frozen
class Table:
    """A table of read_model. Its columns are SQL expressions over `d`, the row's doc read
    as a record of `doc_fields`: computed by the database, they cannot disagree with the
    doc. Besides the doc, a row carries event_id, deleted_at (if `soft_delete`) and the
    `extra` columns the doc lacks."""

    name: str
    key: tuple[str, ...]
    doc_fields: str  # json_to_record's column definitions
    columns: tuple[tuple[str, str], ...]  # (column, SQL expression over d)
    load: Callable[[JSON, Mapping[str, Any]], Any]  # (doc, stored row) -> object
    soft_delete: bool = False
    extra: tuple[tuple[str, str, Callable[[Row], Any]], ...] = ()  # (column, type, value)

    def key_of(self, obj: Any) -> Any:
        return (obj.app_id, obj.release_id) if len(self.key) == 2 else obj.id

    def item(self, row: Row) -> JSON:
        """What the database needs to write `row` (json_to_recordset's input)."""
        item: JSON = {"event_id": row.event_id, "doc": row.obj.to_json()}
        if self.soft_delete:
            item["deleted_at"] = row.deleted_at
        for name, _, value in self.extra:
            item[name] = value(row)
        return item


def _load_formation(d: JSON, row: Mapping[str, Any]) -> Formation:
    # An empty live formation and a deleted one both omit "processes" in Flynn's JSON.
    processes = d.get("processes") or ({} if row["deleted_at"] is None else None)
    created_at, updated_at = parse_time(d["created_at"]), parse_time(d["updated_at"])
    return Formation(d["app"], d["release"], created_at, updated_at, processes)


def _load_deployment(d: JSON, row: Mapping[str, Any]) -> Deployment:
    finished = d.get("finished_at")
    return Deployment(
        id=d["id"],
        app_id=d["app"],
        new_release_id=d["new_release"],
        strategy=d["strategy"],
        status=d["status"],
        processes=d["processes"],
        deploy_timeout=d["deploy_timeout"],
        created_at=parse_time(d["created_at"]),
        old_release_id=d.get("old_release"),
        finished_at=parse_time(finished) if finished else None,
        error=row["error"],
    )


def _from_json(cls: Any) -> Callable[[JSON, Mapping[str, Any]], Any]:
    return lambda d, _row: cls.from_json(d)


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
    _from_json(App),
    soft_delete=True,
)
RELEASES = Table(
    "releases",
    ("id",),
    f"id text, app_id text, artifact text, created_at {_T}",
    (*_same("id", "app_id"), ("artifact_id", "d.artifact"), *_same("created_at")),
    _from_json(Release),
    soft_delete=True,
)
ARTIFACTS = Table(
    "artifacts",
    ("id",),
    f"id text, type text, uri text, created_at {_T}",
    _same("id", "type", "uri", "created_at"),
    _from_json(Artifact),
)
FORMATIONS = Table(
    "formations",
    ("app_id", "release_id"),
    f"app text, release text, created_at {_T}, updated_at {_T}",
    (("app_id", "d.app"), ("release_id", "d.release"), *_same("created_at", "updated_at")),
    _load_formation,
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
    _from_json(Job),
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
    _load_deployment,
    extra=(("error", "text", lambda row: row.obj.error),),
)
PROVIDERS = Table(
    "providers",
    ("id",),
    f"id text, name text, url text, created_at {_T}, updated_at {_T}",
    _same("id", "name", "url", "created_at", "updated_at"),
    _from_json(Provider),
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
    _from_json(Resource),
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
    _from_json(Route),
    soft_delete=True,
)
DOMAIN_MIGRATIONS = Table(
    "domain_migrations",
    ("id",),
    f"id text, old_domain text, domain text, created_at {_T}, finished_at {_T}",
    _same("id", "old_domain", "domain", "created_at", "finished_at"),
    _from_json(DomainMigration),
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


def upsert(table: Table) -> str:
    """The statement writing a batch's rows of `table`, given as one JSON array of
    Table.item()s: cheaper to send than an array per column, and the key columns come
    from the doc."""
    given = [("event_id", "bigint")]
    given += [("deleted_at", "timestamptz")] if table.soft_delete else []
    given += [(name, type_) for name, type_, _ in table.extra]
    names = [name for name, _ in table.columns] + [name for name, _ in given] + ["doc"]
    values = [expr for _, expr in table.columns] + [f"r.{name}" for name, _ in given]
    record = ", ".join(f"{name} {type_}" for name, type_ in given)
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in table.key)
    return (
        f"INSERT INTO read_model.{table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(values)}, r.doc "
        f"FROM json_to_recordset($1::text::json) AS r({record}, doc json), "
        f"json_to_record(r.doc) AS d({table.doc_fields}) "
        f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
    )
