"""Artifact and release commands: both objects are immutable once created."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from commands.errors import AlreadyExistsError, ValidationError
from commands.ids import given_id
from eventstore.events import ArtifactCreated, Event, ReleaseCreated
from eventstore.objects import JSON, Artifact, Release
from projections.state import State, canonical_uuid, find_app

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
    """A process type with every default resource filled in, and request = limit where unset."""
    given: dict[str, Any] = process.get("resources") or {}
    resources: dict[str, dict[str, int]] = {}
    for name in sorted({*DEFAULT_RESOURCES, *given}):
        spec = dict(given.get(name) or DEFAULT_RESOURCES.get(name) or {})
        if spec.get("request") is None and spec.get("limit") is not None:
            spec["request"] = spec["limit"]
        if spec.get("limit") is None and spec.get("request") is not None:
            spec["limit"] = spec["request"]
        resources[name] = {"request": spec["request"], "limit": spec["limit"]}
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


HANDLERS: dict[type, Callable[[State, Any], list[Event]]] = {
    CreateArtifact: create_artifact,
    CreateRelease: create_release,
}
