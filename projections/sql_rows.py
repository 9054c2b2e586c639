"""The fold of a batch of events over the SQL read model's rows it touches.

Pure, no I/O. projections.sql fetches the rows a batch needs (`wants`), folds the batch
over them here (`fold`), then writes back what changed (`Changes.to_write`). The rules are
projections.state.apply's, restated over rows: nothing here reads the in-memory State.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, assert_never

import attrs

from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    AppUpdated,
    ArtifactCreated,
    DeploymentCreated,
    DeploymentStatusChanged,
    DomainMigrated,
    Event,
    FormationScaled,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    ReleaseDeleted,
    ResourceCreated,
    ResourceDeleted,
    RouteCreated,
    RouteDeleted,
    RouteUpdated,
)
from domain.keys import KeyCreated, KeyRevoked
from domain.objects import Deployment, Formation
from domain.states import FINISHED_DEPLOYMENT_STATUSES
from projections.sql_tables import (
    APPS,
    ARTIFACTS,
    DEPLOYMENTS,
    DOMAIN_MIGRATIONS,
    FORMATIONS,
    JOBS,
    PROVIDERS,
    RELEASES,
    RESOURCES,
    ROUTES,
    TABLES,
    Row,
    Table,
)


@attrs.define
class Wants:
    """The stored rows a batch's fold reads: by key, and everything of the apps it deletes."""

    apps: set[str] = attrs.field(factory=set)
    releases: set[str] = attrs.field(factory=set)
    formations: set[tuple[str, str]] = attrs.field(factory=set)
    deployments: set[str] = attrs.field(factory=set)
    deleted_apps: set[str] = attrs.field(factory=set)


def wants(events: Iterable[Event]) -> Wants:
    found = Wants()
    for event in events:
        match event:
            case AppReleaseSet(app=app_id):
                found.apps.add(app_id)
            case AppDeleted(app=app_id):
                found.apps.add(app_id)
                found.deleted_apps.add(app_id)
            case FormationScaled(app=app_id, release=release_id):
                found.formations.add((app_id, release_id))
            case ReleaseDeleted(app=app_id, release=release_id):
                found.releases.add(release_id)
                found.formations.add((app_id, release_id))
            case DeploymentStatusChanged(deployment=deployment_id):
                found.deployments.add(deployment_id)
    return found


def _per_table() -> dict[str, dict[Any, Any]]:
    return {table.name: {} for table in TABLES}


@attrs.define
class Changes:
    """The rows a batch read or wrote, by table and key; `dirty` are the ones to write."""

    rows: dict[str, dict[Any, Row | None]] = attrs.field(factory=lambda: _per_table())
    dirty: dict[str, dict[Any, None]] = attrs.field(factory=lambda: _per_table())
    links: dict[tuple[str, str], int] = attrs.field(factory=dict)  # (app, release) -> event id
    unlinked: set[tuple[str, str]] = attrs.field(factory=set)  # removed before `links` is added

    def loaded(self, table: Table, key: Any, row: Row | None) -> None:
        """A stored row (None: known absent) read before the fold."""
        self.rows[table.name][key] = row

    def get(self, table: Table, key: Any) -> Row | None:
        # A KeyError here means `wants` forgot a row the fold reads.
        return self.rows[table.name][key]

    def put(self, table: Table, row: Row) -> None:
        key = table.key_of(row.obj)
        self.rows[table.name][key] = row
        self.dirty[table.name][key] = None

    def live(self, table: Table) -> Iterator[Row]:
        """Every known row of `table` not deleted (a snapshot: put() may follow)."""
        return iter([r for r in self.rows[table.name].values() if r and r.deleted_at is None])

    def link(self, app_id: str, release_id: str, event_id: int) -> None:
        self.links.setdefault((app_id, release_id), event_id)

    def unlink(self, app_id: str, release_id: str) -> None:
        # A link made later in the batch counts from its own event, as a fresh one.
        self.links.pop((app_id, release_id), None)
        self.unlinked.add((app_id, release_id))

    def to_write(self, table: Table) -> list[Row]:
        rows = self.rows[table.name]
        return [row for key in self.dirty[table.name] if (row := rows[key]) is not None]


def fold(c: Changes, event: Event, at: datetime, event_id: int) -> None:
    """Fold one event into the rows; `at` is its commit time."""
    match event:
        case AppCreated(app=app) | AppUpdated(app=app):
            c.put(APPS, Row(app, event_id))
        case AppReleaseSet(app=app_id, release=release):
            row = c.get(APPS, app_id)
            if row is not None and row.deleted_at is None:
                app = attrs.evolve(row.obj, release_id=release.id, updated_at=at)
                c.put(APPS, Row(app, event_id))
            c.link(app_id, release.id, event_id)
        case AppDeleted():
            _delete_app(c, event.app, at, event_id)
        case ReleaseCreated(release=release):
            c.put(RELEASES, Row(release, event_id))
            if release.app_id:
                c.link(release.app_id, release.id, event_id)
        case ReleaseDeleted():
            _delete_release(c, event, at, event_id)
        case ArtifactCreated(artifact=artifact):
            c.put(ARTIFACTS, Row(artifact, event_id))
        case FormationScaled():
            _scale(c, event, at, event_id)
        case DeploymentCreated(deployment=deployment):
            c.put(DEPLOYMENTS, Row(deployment, event_id))
        case DeploymentStatusChanged():
            _deployment_progressed(c, event, at, event_id)
        case JobStateChanged(job=job):
            c.put(JOBS, Row(job, event_id))
        case ProviderCreated(provider=provider):
            c.put(PROVIDERS, Row(provider, event_id))
        case ResourceCreated(resource=resource):
            c.put(RESOURCES, Row(resource, event_id))
        case ResourceDeleted(resource=resource):
            c.put(RESOURCES, Row(resource, event_id, deleted_at=at))
        case RouteCreated(route=route) | RouteUpdated(route=route):
            c.put(ROUTES, Row(route, event_id))
        case RouteDeleted(route=route):
            c.put(ROUTES, Row(route, event_id, deleted_at=at))
        case DomainMigrated(migration=migration):
            c.put(DOMAIN_MIGRATIONS, Row(migration, event_id))
        case KeyCreated() | KeyRevoked():
            pass  # the service's own keys: no table (their events are in the log)
        case _:
            assert_never(event)


def _delete_app(c: Changes, app_id: str, at: datetime, event_id: int) -> None:
    row = c.get(APPS, app_id)
    if row is None or row.deleted_at is not None:
        return
    c.put(APPS, Row(attrs.evolve(row.obj, updated_at=at), event_id, deleted_at=at))
    # Flynn soft-deletes the app's formations without scale events.
    for f in c.live(FORMATIONS):
        if f.obj.app_id == app_id:
            formation = attrs.evolve(f.obj, processes=None, updated_at=at)
            c.put(FORMATIONS, Row(formation, event_id, deleted_at=at))
    # Shared resources stay, without this app.
    for r in c.live(RESOURCES):
        if app_id in r.obj.apps:
            apps = tuple(a for a in r.obj.apps if a != app_id)
            c.put(RESOURCES, Row(attrs.evolve(r.obj, apps=apps), event_id))
    for route in c.live(ROUTES):
        if route.obj.app_id == app_id:
            c.put(ROUTES, Row(route.obj, event_id, deleted_at=at))


def _delete_release(c: Changes, event: ReleaseDeleted, at: datetime, event_id: int) -> None:
    c.unlink(event.app, event.release)
    formation = c.get(FORMATIONS, (event.app, event.release))
    if formation is not None and formation.deleted_at is None:
        deleted = attrs.evolve(formation.obj, processes=None, updated_at=at)
        c.put(FORMATIONS, Row(deleted, event_id, deleted_at=at))
    release = c.get(RELEASES, event.release)
    if release is not None and release.deleted_at is None and not event.remaining_apps:
        c.put(RELEASES, Row(release.obj, event_id, deleted_at=at))


def _scale(c: Changes, event: FormationScaled, at: datetime, event_id: int) -> None:
    current = c.get(FORMATIONS, (event.app, event.release))
    if event.processes is None:
        if current is not None:
            formation = attrs.evolve(current.obj, processes=None, updated_at=at)
            c.put(FORMATIONS, Row(formation, event_id, deleted_at=current.deleted_at or at))
        return
    live = current is not None and current.deleted_at is None
    created_at = current.obj.created_at if current is not None and live else at
    formation = Formation(event.app, event.release, created_at, at, dict(event.processes))
    c.put(FORMATIONS, Row(formation, event_id))
    c.link(event.app, event.release, event_id)


def _deployment_progressed(
    c: Changes, event: DeploymentStatusChanged, at: datetime, event_id: int
) -> None:
    current = c.get(DEPLOYMENTS, event.deployment)
    if current is None:
        return
    deployment: Deployment = current.obj
    finished = event.status in FINISHED_DEPLOYMENT_STATUSES
    progressed = attrs.evolve(
        deployment,
        status=event.status,
        finished_at=at if finished else deployment.finished_at,
        error=event.error or deployment.error,
    )
    c.put(DEPLOYMENTS, Row(progressed, event_id))
