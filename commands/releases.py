"""Artifact and release commands: both objects are immutable once created; a release can be
deleted from an app (Flynn HEAD), its artifacts stay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from commands.errors import AlreadyExistsError, NotFoundError, ValidationError
from commands.types import handler, handlers
from domain.events import ArtifactCreated, Event, ReleaseCreated, ReleaseDeleted
from domain.ids import canonical_uuid, given_id
from domain.objects import JSON, Artifact, Deployment, Release
from projections.apps import find_app
from projections.state import State

# Flynn SEED: controller/resource/resource.go defaults, filled into every process type.
DEFAULT_RESOURCES: dict[str, dict[str, int]] = {
    "max_fd": {"request": 10000, "limit": 10000},
    "memory": {"request": 1073741824, "limit": 1073741824},
}


@attrs.frozen
class CreateArtifact:
    id: str
    type: str
    uri: str
    now: datetime
    meta: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, doc: JSON, *, new_id: str, now: datetime) -> CreateArtifact:
        return cls(
            id=given_id(doc, new_id),
            type=doc["type"],
            uri=doc["uri"],
            now=now,
            meta=doc.get("meta") or {},
        )


@attrs.frozen
class CreateRelease:
    id: str
    now: datetime
    artifact_id: str | None = None
    artifact_ids: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    meta: dict[str, str] = attrs.field(factory=dict)
    processes: dict[str, JSON] = attrs.field(factory=dict)
    app: str | None = None  # id or name (HEAD ties a release to an app; SEED does not)

    @classmethod
    def from_json(cls, doc: JSON, *, new_id: str, now: datetime) -> CreateRelease:
        artifact = doc.get("artifact")
        return cls(
            id=given_id(doc, new_id),
            now=now,
            artifact_id=(canonical_uuid(artifact) or artifact) if artifact else None,
            artifact_ids=tuple(canonical_uuid(a) or a for a in doc.get("artifacts") or ()),
            env=doc.get("env") or {},
            meta=doc.get("meta") or {},
            processes=doc.get("processes") or {},
            app=doc.get("app_id") or None,
        )


def create_artifact(state: State, cmd: CreateArtifact) -> list[Event]:
    # Idempotent on (type, uri): the existing artifact is the answer (Flynn SEED emits nothing).
    if (cmd.type, cmd.uri) in state.artifact_ids_by_key:
        return []
    if cmd.id in state.artifacts:
        raise AlreadyExistsError(f'artifact with id "{cmd.id}" already exists')
    return [ArtifactCreated(Artifact(cmd.id, cmd.type, cmd.uri, cmd.now, cmd.meta))]


def with_resource_defaults(process: JSON) -> JSON:
    """A process type with its resources as Flynn's SetDefaults leaves them: each default
    resource gets the default limit where none is given and request = limit where unset;
    other resources keep what was given. An unset (null) request or limit is left out."""
    given: dict[str, Any] = process.get("resources") or {}
    resources: dict[str, dict[str, int]] = {}
    for name in sorted({*DEFAULT_RESOURCES, *given}):
        spec = given.get(name) or {}
        request, limit = spec.get("request"), spec.get("limit")
        default = DEFAULT_RESOURCES.get(name)
        if default is not None:
            limit = default["limit"] if limit is None else limit
            request = limit if request is None else request
        resources[name] = {
            k: v for k, v in (("request", request), ("limit", limit)) if v is not None
        }
    return {
        **{k: v for k, v in process.items() if k != "resources" and v is not None},
        "resources": resources,
    }


def create_release(state: State, cmd: CreateRelease) -> list[Event]:
    if cmd.id in state.releases:
        raise AlreadyExistsError(f'release with id "{cmd.id}" already exists')
    for key in cmd.env:
        if key == "":
            # Flynn HEAD: controller/release.go
            raise ValidationError(
                "env",
                "you can't create an env var with an empty key "
                f'(tried to set ""="{cmd.env[key]}")',
            )
    artifact_id = cmd.artifact_id or (cmd.artifact_ids[0] if cmd.artifact_ids else None)
    for ref in {artifact_id, *cmd.artifact_ids} - {None}:
        if ref not in state.artifacts:
            raise ValidationError("artifact", f"could not find artifact with ID {ref}")
    app_id = None
    if cmd.app:
        app = find_app(state, cmd.app)
        if app is None:
            raise ValidationError("app_id", f"could not find app with ID {cmd.app}")
        app_id = app.id
    release = Release(
        id=cmd.id,
        created_at=cmd.now,
        artifact_id=artifact_id,
        artifact_ids=cmd.artifact_ids,
        env=cmd.env,
        meta=cmd.meta,
        processes={name: with_resource_defaults(p) for name, p in cmd.processes.items()},
        app_id=app_id,
    )
    return [ReleaseCreated(release)]


@attrs.frozen
class DeleteRelease:
    app: str  # id or name
    release_id: str
    now: datetime


def delete_release(state: State, cmd: DeleteRelease) -> list[Event]:
    """Flynn HEAD: controller/release.go DeleteRelease, with refusals where Flynn would stop
    running processes or break a deployment."""
    app = find_app(state, cmd.app)
    listed = app is not None and cmd.release_id in state.app_releases.get(app.id, {})
    if app is None or not listed or cmd.release_id not in state.releases:
        raise NotFoundError(f"release {cmd.release_id!r} of app {cmd.app!r} not found")
    if app.release_id == cmd.release_id:
        raise ValidationError("", "cannot delete current app release")  # Flynn's message
    formation = state.formation(app.id, cmd.release_id)
    if formation is not None and formation.total > 0:
        counts = ", ".join(f"{t}={n}" for t, n in sorted((formation.processes or {}).items()) if n)
        raise ValidationError(
            "", f"cannot delete a release that is scaled up ({counts}): scale it to zero first"
        )
    if any(app.id == d.app_id for d in _deploying(state, cmd.release_id)):
        raise ValidationError("", "cannot delete a release that a deployment in progress uses")
    return [release_deletion(state, app.id, cmd.release_id)]


def release_deletion(state: State, app_id: str, release_id: str) -> ReleaseDeleted:
    """The release leaving `app_id`; it stays for the other apps that list it or deploy it."""
    others = {*state.release_apps(release_id), *(d.app_id for d in _deploying(state, release_id))}
    others.discard(app_id)
    return ReleaseDeleted(app_id, release_id, tuple(sorted(a for a in others if a in state.apps)))


def _deploying(state: State, release_id: str) -> list[Deployment]:
    """The unfinished deployments from or to the release."""
    found = (state.deployments.get(d) for d in state.deployment_progress)
    return [
        d for d in found if d is not None and release_id in (d.new_release_id, d.old_release_id)
    ]


HANDLERS = handlers(
    handler(CreateArtifact, create_artifact),
    handler(CreateRelease, create_release),
    handler(DeleteRelease, delete_release),
)
