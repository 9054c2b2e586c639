"""The events of the log: one past-tense class per kind, each with Flynn's wire identity.

The stored `type` is the class name. `data()` is exactly Flynn's `events.data` for that
object_type; a few events carry extra keys Flynn's clients ignore, where a replay needs
them (marked below). Times not in the payload come from the event's commit time.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from domain.keys import KeyCreated, KeyRevoked
from domain.objects import (
    JSON,
    App,
    Artifact,
    Deployment,
    DomainMigration,
    Job,
    Provider,
    Release,
    Resource,
    Route,
    ident,
)
from domain.states import DEPLOYMENT_STATUSES, DeploymentStatus
from domain.timefmt import format_time, parse_time


@attrs.frozen
class AppCreated:
    """An app was created. Flynn: object_type "app", op_create."""

    object_type: ClassVar[str] = "app"
    op: ClassVar[str | None] = "op_create"
    app: App

    @property
    def object_id(self) -> str:
        return self.app.id

    @property
    def app_id(self) -> str | None:
        return self.app.id

    def data(self) -> JSON:
        return self.app.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> AppCreated:
        return cls(App.from_json(data))


@attrs.frozen
class AppUpdated:
    """An app's strategy, meta, deploy timeout or protection changed. Flynn: "app", op_update."""

    object_type: ClassVar[str] = "app"
    op: ClassVar[str | None] = "op_update"
    app: App

    @property
    def object_id(self) -> str:
        return self.app.id

    @property
    def app_id(self) -> str | None:
        return self.app.id

    def data(self) -> JSON:
        return self.app.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> AppUpdated:
        return cls(App.from_json(data))


@attrs.frozen
class AppReleaseSet:
    """An app's current release was set. Flynn: "app_release", object id = the release id."""

    object_type: ClassVar[str] = "app_release"
    op: ClassVar[str | None] = None
    app: str
    release: Release
    prev_release: Release | None = None

    @property
    def object_id(self) -> str:
        return self.release.id

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        doc: JSON = {}
        if self.prev_release is not None:
            doc["prev_release"] = self.prev_release.to_json()
        doc["release"] = self.release.to_json()
        return doc

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> AppReleaseSet:
        prev = data.get("prev_release")
        return cls(
            app=ident(app_id or ""),
            release=Release.from_json(data["release"]),
            prev_release=Release.from_json(prev) if prev else None,
        )


@attrs.frozen
class AppDeleted:
    """An app was deleted with everything only it used. Flynn: "app_deletion"."""

    object_type: ClassVar[str] = "app_deletion"
    op: ClassVar[str | None] = None
    app: str
    deleted_routes: tuple[Route, ...] = ()
    deleted_resources: tuple[Resource, ...] = ()
    deleted_releases: tuple[Release, ...] = ()

    @property
    def object_id(self) -> str:
        return self.app

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        return {
            "app_deletion": {
                "app": self.app,
                "deleted_routes": [r.to_json() for r in self.deleted_routes],
                "deleted_resources": [r.to_json() for r in self.deleted_resources],
                "deleted_releases": [r.to_json() for r in self.deleted_releases],
            },
            "error": "",
        }

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> AppDeleted:
        deletion = data["app_deletion"]
        return cls(
            app=deletion["app"],
            deleted_routes=tuple(Route.from_json(r) for r in deletion.get("deleted_routes") or ()),
            deleted_resources=tuple(
                Resource.from_json(r) for r in deletion.get("deleted_resources") or ()
            ),
            deleted_releases=tuple(
                Release.from_json(r) for r in deletion.get("deleted_releases") or ()
            ),
        )


@attrs.frozen
class ReleaseCreated:
    """A release was created. Flynn: "release" (SEED: no app)."""

    object_type: ClassVar[str] = "release"
    op: ClassVar[str | None] = None
    release: Release

    @property
    def object_id(self) -> str:
        return self.release.id

    @property
    def app_id(self) -> str | None:
        return self.release.app_id

    def data(self) -> JSON:
        return self.release.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> ReleaseCreated:
        return cls(Release.from_json(data))


@attrs.frozen
class ReleaseDeleted:
    """A release left an app: gone for good unless other apps still use it (`remaining_apps`).

    Flynn HEAD: "release_deletion" (controller/data/release.go). Its artifacts stay, so no
    file is ever deleted.
    """

    object_type: ClassVar[str] = "release_deletion"
    op: ClassVar[str | None] = None
    app: str
    release: str
    remaining_apps: tuple[str, ...] = ()
    deleted_files: tuple[str, ...] = ()

    @property
    def object_id(self) -> str:
        return self.release

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        return {
            "release_deletion": {
                "app": self.app,
                "release": self.release,
                "remaining_apps": list(self.remaining_apps),
                "deleted_files": list(self.deleted_files),
            },
            "error": "",
        }

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> ReleaseDeleted:
        deletion = data["release_deletion"]
        return cls(
            app=ident(deletion.get("app") or app_id or ""),
            release=ident(deletion.get("release") or object_id),
            remaining_apps=tuple(deletion.get("remaining_apps") or ()),
            deleted_files=tuple(deletion.get("deleted_files") or ()),
        )


@attrs.frozen
class ArtifactCreated:
    """An artifact was created. Flynn: "artifact"."""

    object_type: ClassVar[str] = "artifact"
    op: ClassVar[str | None] = None
    artifact: Artifact

    @property
    def object_id(self) -> str:
        return self.artifact.id

    @property
    def app_id(self) -> str | None:
        return None

    def data(self) -> JSON:
        return self.artifact.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> ArtifactCreated:
        return cls(Artifact.from_json(data))


@attrs.frozen
class FormationScaled:
    """A formation was put (full replace) or deleted (processes None). Flynn: "scale"."""

    object_type: ClassVar[str] = "scale"
    op: ClassVar[str | None] = None
    app: str
    release: str
    processes: dict[str, int] | None
    prev_processes: dict[str, int] | None = None

    @property
    def object_id(self) -> str:
        return f"{self.app}:{self.release}"

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        doc: JSON = {}
        if self.prev_processes is not None:
            doc["prev_processes"] = self.prev_processes
        doc["processes"] = self.processes
        doc["release"] = self.release
        return doc

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> FormationScaled:
        return cls(
            app=ident(app_id or object_id.split(":", 1)[0]),
            release=ident(data["release"]),
            processes=data.get("processes"),
            prev_processes=data.get("prev_processes"),
        )


@attrs.frozen
class DeploymentCreated:
    """A deployment was created, pending or already complete. Flynn: "deployment", op_create.

    Besides Flynn's DeploymentEvent keys the payload carries the deployment's own fields
    (old_release, new_release, strategy, processes, deploy_timeout, created_at), which
    Flynn kept in a table and a replay needs.
    """

    object_type: ClassVar[str] = "deployment"
    op: ClassVar[str | None] = "op_create"
    deployment: Deployment

    @property
    def object_id(self) -> str:
        return self.deployment.id

    @property
    def app_id(self) -> str | None:
        return self.deployment.app_id

    def data(self) -> JSON:
        d = self.deployment
        doc: JSON = {
            "app": d.app_id,
            "deployment": d.id,
            "release": d.new_release_id,
            "status": d.status,
        }
        if d.old_release_id:
            doc["old_release"] = d.old_release_id
        doc |= {
            "new_release": d.new_release_id,
            "strategy": d.strategy,
            "processes": d.processes,
            "deploy_timeout": d.deploy_timeout,
            "created_at": format_time(d.created_at),
        }
        if d.finished_at is not None:
            doc["finished_at"] = format_time(d.finished_at)
        return doc

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> DeploymentCreated:
        finished = data.get("finished_at")
        return cls(
            Deployment(
                id=ident(data["deployment"]),
                app_id=ident(data["app"]),
                new_release_id=ident(data["new_release"]),
                strategy=data["strategy"],
                status=DEPLOYMENT_STATUSES[data["status"]],
                processes=data.get("processes") or {},
                deploy_timeout=data["deploy_timeout"],
                created_at=parse_time(data["created_at"]),
                old_release_id=data.get("old_release"),
                finished_at=parse_time(finished) if finished else None,
            )
        )


@attrs.frozen
class DeploymentStatusChanged:
    """A deployment made progress, completed or failed. Flynn: "deployment", op_update."""

    object_type: ClassVar[str] = "deployment"
    op: ClassVar[str | None] = "op_update"
    app: str
    deployment: str
    release: str
    status: DeploymentStatus  # running | complete | failed
    job_type: str = ""
    job_state: str = ""  # a JobState; "up" or "down" for the reports of a job type
    error: str = ""

    @property
    def object_id(self) -> str:
        return self.deployment

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        doc: JSON = {
            "app": self.app,
            "deployment": self.deployment,
            "release": self.release,
            "status": self.status,
        }
        if self.job_type:
            doc["job_type"] = self.job_type
        if self.job_state:
            doc["job_state"] = self.job_state
        if self.error:
            doc["error"] = self.error
        return doc

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> DeploymentStatusChanged:
        get = data.get  # positional: a quarter of a busy log is deployment progress
        return cls(
            ident(data["app"]),
            ident(data["deployment"]),
            ident(data["release"]),
            DEPLOYMENT_STATUSES[data["status"]],
            ident(get("job_type", "")),
            ident(get("job_state", "")),
            get("error", ""),
        )


@attrs.frozen
class JobStateChanged:
    """A job was created or changed state. Flynn: "job"; at most one event per (job, state)."""

    object_type: ClassVar[str] = "job"
    op: ClassVar[str | None] = None
    job: Job

    @property
    def object_id(self) -> str:
        return self.job.id

    @property
    def app_id(self) -> str | None:
        return self.job.app_id

    @property
    def unique_id(self) -> str:
        # Flynn: controller/data/jobs.go, "<job id>|<state>" with insert-or-ignore.
        return f"{self.job.id}|{self.job.state}"

    def data(self) -> JSON:
        return self.job.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> JobStateChanged:
        return cls(Job.from_json(data))


@attrs.frozen
class ProviderCreated:
    """A resource provider was registered. Flynn: "provider"."""

    object_type: ClassVar[str] = "provider"
    op: ClassVar[str | None] = None
    provider: Provider

    @property
    def object_id(self) -> str:
        return self.provider.id

    @property
    def app_id(self) -> str | None:
        return None

    def data(self) -> JSON:
        return self.provider.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> ProviderCreated:
        return cls(Provider.from_json(data))


@attrs.frozen
class ResourceCreated:
    """A resource was provisioned or registered: one event per linked app (HEAD: one without
    an app when none is linked, so that the log always records the resource)."""

    object_type: ClassVar[str] = "resource"
    op: ClassVar[str | None] = None
    resource: Resource
    app: str | None = None

    @property
    def object_id(self) -> str:
        return self.resource.id

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        return self.resource.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> ResourceCreated:
        return cls(Resource.from_json(data), app_id)


@attrs.frozen
class ResourceDeleted:
    """A resource was deprovisioned and deleted: one event per linked app (or one without)."""

    object_type: ClassVar[str] = "resource_deletion"
    op: ClassVar[str | None] = None
    resource: Resource
    app: str | None = None

    @property
    def object_id(self) -> str:
        return self.resource.id

    @property
    def app_id(self) -> str | None:
        return self.app

    def data(self) -> JSON:
        return self.resource.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> ResourceDeleted:
        return cls(Resource.from_json(data), app_id)


@attrs.frozen
class RouteCreated:
    """A route was created. Flynn: "route"."""

    object_type: ClassVar[str] = "route"
    op: ClassVar[str | None] = "op_create"
    route: Route

    @property
    def object_id(self) -> str:
        return self.route.id

    @property
    def app_id(self) -> str | None:
        return self.route.app_id

    def data(self) -> JSON:
        return self.route.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> RouteCreated:
        return cls(Route.from_json(data))


@attrs.frozen
class RouteUpdated:
    """A route was updated. Flynn: "route"."""

    object_type: ClassVar[str] = "route"
    op: ClassVar[str | None] = "op_update"
    route: Route

    @property
    def object_id(self) -> str:
        return self.route.id

    @property
    def app_id(self) -> str | None:
        return self.route.app_id

    def data(self) -> JSON:
        return self.route.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> RouteUpdated:
        return cls(Route.from_json(data))


@attrs.frozen
class RouteDeleted:
    """A route was deleted. Flynn: "route_deletion", data = the route."""

    object_type: ClassVar[str] = "route_deletion"
    op: ClassVar[str | None] = None
    route: Route

    @property
    def object_id(self) -> str:
        return self.route.id

    @property
    def app_id(self) -> str | None:
        return self.route.app_id

    def data(self) -> JSON:
        return self.route.to_json()

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> RouteDeleted:
        return cls(Route.from_json(data))


@attrs.frozen
class DomainMigrated:
    """A domain migration started, or ended (finished_at, or error). Flynn: "domain_migration"."""

    object_type: ClassVar[str] = "domain_migration"
    op: ClassVar[str | None] = None
    migration: DomainMigration
    error: str = ""

    @property
    def object_id(self) -> str:
        return self.migration.id

    @property
    def app_id(self) -> str | None:
        return None

    def data(self) -> JSON:
        doc: JSON = {"domain_migration": self.migration.to_json()}
        if self.error:
            doc["error"] = self.error
        return doc

    @classmethod
    def from_data(cls, data: JSON, app_id: str | None, object_id: str) -> DomainMigrated:
        return cls(DomainMigration.from_json(data["domain_migration"]), data.get("error", ""))


Event = (
    AppCreated
    | AppUpdated
    | AppReleaseSet
    | AppDeleted
    | ReleaseCreated
    | ReleaseDeleted
    | ArtifactCreated
    | FormationScaled
    | DeploymentCreated
    | DeploymentStatusChanged
    | JobStateChanged
    | ProviderCreated
    | ResourceCreated
    | ResourceDeleted
    | RouteCreated
    | RouteUpdated
    | RouteDeleted
    | DomainMigrated
    | KeyCreated
    | KeyRevoked
)

EVENT_CLASSES: tuple[type[Event], ...] = (
    AppCreated,
    AppUpdated,
    AppReleaseSet,
    AppDeleted,
    ReleaseCreated,
    ArtifactCreated,
    FormationScaled,
    DeploymentCreated,
    DeploymentStatusChanged,
    JobStateChanged,
    ProviderCreated,
    ResourceCreated,
    ResourceDeleted,
    RouteCreated,
    RouteUpdated,
    RouteDeleted,
    DomainMigrated,
    ReleaseDeleted,
    KeyCreated,
    KeyRevoked,
)

#: Stored type name -> class. Names are the decode key: never rename one.
EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in EVENT_CLASSES}

# Names are the decode key and (object_type, op) is the wire identity: both must be unique.
assert len(EVENT_TYPES) == len(EVENT_CLASSES)
assert len({(cls.object_type, cls.op) for cls in EVENT_CLASSES}) == len(EVENT_CLASSES)
