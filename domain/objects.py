"""Flynn's objects as frozen value types, with their wire JSON written by hand (omitempty kept)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import attrs

from domain.states import JOB_STATES, DeploymentStatus, JobState
from domain.timefmt import format_time, parse_time

JSON = dict[str, Any]

# Flynn: controller/data/app.go and schema/controller/app.json (SEED era).
DEFAULT_STRATEGY = "all-at-once"
DEFAULT_DEPLOY_TIMEOUT = 30


def _times(doc: JSON, *names: str) -> list[datetime]:
    return [parse_time(doc[name]) for name in names]


#: Ids (and other short strings) decoded from the log, interned: an id is repeated in many
#: objects and index keys (a job's app and release, a release's app, ...), and each decoded
#: copy costs memory, far more than interning costs time (bench/README.md).
ident = sys.intern
#: The dict of every decoded object with none of a mapping (a job's meta and env, ...): 64
#: bytes each otherwise, 600 per app of a big model. The objects are frozen values: their
#: dicts are never changed in place (everything builds new ones), so one can be shared.
EMPTY: dict[str, Any] = {}


@attrs.frozen
class App:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    meta: dict[str, str] = attrs.field(factory=dict)
    strategy: str = DEFAULT_STRATEGY
    deploy_timeout: int = DEFAULT_DEPLOY_TIMEOUT
    release_id: str | None = None
    protected: bool = False

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id, "name": self.name, "meta": self.meta}  # meta always present
        if self.strategy:
            doc["strategy"] = self.strategy
        if self.release_id:
            doc["release"] = self.release_id
        if self.protected:
            doc["protected"] = True
        if self.deploy_timeout:
            doc["deploy_timeout"] = self.deploy_timeout
        doc["created_at"] = format_time(self.created_at)
        doc["updated_at"] = format_time(self.updated_at)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> App:
        get = doc.get  # positional, one bound get: see Job.from_json
        return cls(
            ident(doc["id"]),
            doc["name"],  # not interned: kept once (an index key), an interned copy costs 40 B
            parse_time(doc["created_at"]),
            parse_time(doc["updated_at"]),
            get("meta") or EMPTY,
            get("strategy", ""),
            get("deploy_timeout", 0),
            _ident_or_none(get("release")),
            get("protected", False),
        )

    @property
    def is_system(self) -> bool:
        return self.meta.get("flynn-system-app") == "true"


@attrs.frozen
class Artifact:
    id: str
    type: str
    uri: str
    created_at: datetime
    meta: dict[str, str] = attrs.field(factory=dict)

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id, "type": self.type, "uri": self.uri}
        if self.meta:
            doc["meta"] = self.meta
        doc["created_at"] = format_time(self.created_at)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> Artifact:
        return cls(
            id=ident(doc["id"]),
            type=ident(doc["type"]),
            uri=doc["uri"],
            created_at=parse_time(doc["created_at"]),
            meta=doc.get("meta") or EMPTY,
        )


@attrs.frozen
class Release:
    id: str
    created_at: datetime
    artifact_id: str | None = None
    # HEAD's multi-artifact list, kept (and echoed) only when a client sent it.
    artifact_ids: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    meta: dict[str, str] = attrs.field(factory=dict)
    # Process type name -> Flynn's ProcessType JSON, resource defaults already filled in.
    processes: dict[str, JSON] = attrs.field(factory=dict)
    app_id: str | None = None

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id}
        if self.app_id:
            doc["app_id"] = self.app_id
        if self.artifact_id:
            doc["artifact"] = self.artifact_id
        if self.artifact_ids:
            doc["artifacts"] = list(self.artifact_ids)
        if self.env:
            doc["env"] = self.env
        if self.meta:
            doc["meta"] = self.meta
        if self.processes:
            doc["processes"] = self.processes
        doc["created_at"] = format_time(self.created_at)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> Release:
        get = doc.get  # positional: each deploy decodes a release twice (and its previous)
        artifacts = get("artifacts")
        return cls(
            ident(doc["id"]),
            parse_time(doc["created_at"]),
            _ident_or_none(get("artifact")),
            tuple(artifacts) if artifacts else (),
            get("env") or EMPTY,
            get("meta") or EMPTY,
            get("processes") or {},
            _ident_or_none(get("app_id")),
        )


@attrs.frozen
class Formation:
    app_id: str
    release_id: str
    created_at: datetime
    updated_at: datetime
    # None once deleted (Flynn soft-deletes by setting processes to NULL).
    processes: dict[str, int] | None = None

    @property
    def deleted(self) -> bool:
        return self.processes is None

    @property
    def total(self) -> int:
        return sum((self.processes or {}).values())

    def to_json(self) -> JSON:
        doc: JSON = {"app": self.app_id, "release": self.release_id}
        if self.processes:
            doc["processes"] = self.processes
        doc["created_at"] = format_time(self.created_at)
        doc["updated_at"] = format_time(self.updated_at)
        return doc


@attrs.frozen
class Job:
    """A job as the scheduler reports it (SEED fields, plus HEAD's uuid and host_id)."""

    id: str  # "<host_id>-<uuid>"
    app_id: str
    release_id: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    type: str = ""
    meta: dict[str, str] = attrs.field(factory=dict)
    exit_status: int | None = None
    host_error: str = ""
    # A one-off job's command and environment, so that a scheduler can run it.
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)

    @property
    def host_id(self) -> str:
        return self.id.split("-", 1)[0] if "-" in self.id else ""

    @property
    def uuid(self) -> str:
        return self.id.split("-", 1)[1] if "-" in self.id else self.id

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id, "uuid": self.uuid}
        if self.host_id:
            doc["host_id"] = self.host_id
        doc["app"] = self.app_id
        doc["release"] = self.release_id
        if self.type:
            doc["type"] = self.type
        doc["state"] = self.state
        if self.meta:
            doc["meta"] = self.meta
        if self.cmd:
            doc["cmd"] = list(self.cmd)
        if self.entrypoint:
            doc["entrypoint"] = list(self.entrypoint)
        if self.env:
            doc["env"] = self.env
        if self.exit_status is not None:
            doc["exit_status"] = self.exit_status
        if self.host_error:
            doc["host_error"] = self.host_error
        doc["created_at"] = format_time(self.created_at)
        doc["updated_at"] = format_time(self.updated_at)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> Job:
        # Positional, with one bound get: job reports are half of a busy log, and this is
        # a large part of folding one (bench/README.md: keywords and _times cost more).
        get = doc.get
        cmd, entrypoint = get("cmd"), get("entrypoint")
        return cls(
            ident(doc["id"]),
            ident(doc["app"]),
            ident(doc["release"]),
            JOB_STATES[doc["state"]],
            parse_time(doc["created_at"]),
            parse_time(doc["updated_at"]),
            ident(get("type", "")),
            get("meta") or EMPTY,
            get("exit_status"),
            get("host_error", ""),
            tuple(cmd) if cmd else (),
            tuple(entrypoint) if entrypoint else (),
            get("env") or EMPTY,
        )


@attrs.frozen
class Deployment:
    id: str
    app_id: str
    new_release_id: str
    strategy: str
    status: DeploymentStatus
    processes: dict[str, int]
    deploy_timeout: int
    created_at: datetime
    old_release_id: str | None = None
    finished_at: datetime | None = None
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id, "app": self.app_id}
        if self.old_release_id:
            doc["old_release"] = self.old_release_id
        doc["new_release"] = self.new_release_id
        doc["strategy"] = self.strategy
        doc["status"] = self.status
        doc["processes"] = self.processes
        doc["deploy_timeout"] = self.deploy_timeout
        doc["created_at"] = format_time(self.created_at)
        if self.finished_at is not None:
            doc["finished_at"] = format_time(self.finished_at)
        return doc


@attrs.frozen
class Provider:
    id: str
    name: str
    url: str
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "url": self.url,
            "name": self.name,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
        }

    @classmethod
    def from_json(cls, doc: JSON) -> Provider:
        created_at, updated_at = _times(doc, "created_at", "updated_at")
        return cls(doc["id"], doc["name"], doc["url"], created_at, updated_at)


@attrs.frozen
class Resource:
    id: str
    provider_id: str
    created_at: datetime
    external_id: str = ""
    env: dict[str, str] = attrs.field(factory=dict)
    apps: tuple[str, ...] = ()  # linked app ids, most recently linked first

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id, "provider": self.provider_id}
        if self.external_id:
            doc["external_id"] = self.external_id
        if self.env:
            doc["env"] = self.env
        if self.apps:
            doc["apps"] = list(self.apps)
        doc["created_at"] = format_time(self.created_at)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> Resource:
        return cls(
            id=doc["id"],
            provider_id=doc["provider"],
            created_at=parse_time(doc["created_at"]),
            external_id=doc.get("external_id", ""),
            env=doc.get("env") or EMPTY,
            apps=tuple(doc.get("apps") or ()),
        )


@attrs.frozen
class Route:
    """A router route (SEED's flat form: tls_cert/tls_key beside the other fields)."""

    type: str  # "http" | "tcp"
    id: str
    parent_ref: str
    service: str
    created_at: datetime
    updated_at: datetime
    domain: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    sticky: bool = False
    path: str = ""
    port: int = 0
    leader: bool = False
    drain_backends: bool = False

    @property
    def app_id(self) -> str | None:
        prefix = "controller/apps/"
        # Interned: the app's own id string (an index key), not a new copy per call.
        return ident(self.parent_ref[len(prefix) :]) if self.parent_ref.startswith(prefix) else None

    def to_json(self) -> JSON:
        doc: JSON = {
            "type": self.type,  # type and service are always present (Flynn)
            "id": self.id,
            "parent_ref": self.parent_ref,
            "service": self.service,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
        }
        optional: JSON = {
            "domain": self.domain,
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "sticky": self.sticky,
            "path": self.path,
            "port": self.port,
            "leader": self.leader,
            "drain_backends": self.drain_backends,
        }
        doc.update((key, value) for key, value in optional.items() if value)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> Route:
        get = doc.get  # positional, one bound get: see Job.from_json
        return cls(
            ident(doc["type"]),
            doc["id"],  # not interned: only its own index keys hold it
            get("parent_ref", ""),
            get("service", ""),
            parse_time(doc["created_at"]),
            parse_time(doc["updated_at"]),
            get("domain", ""),
            get("tls_cert", ""),
            get("tls_key", ""),
            get("sticky", False),
            get("path", ""),
            get("port", 0),
            get("leader", False),
            get("drain_backends", False),
        )


@attrs.frozen
class DomainMigration:
    id: str
    old_domain: str
    domain: str
    created_at: datetime
    old_tls_cert: JSON | None = None
    tls_cert: JSON | None = None
    finished_at: datetime | None = None

    def to_json(self) -> JSON:
        doc: JSON = {"id": self.id}
        if self.old_tls_cert is not None:
            doc["old_tls_cert"] = self.old_tls_cert
        if self.tls_cert is not None:
            doc["tls_cert"] = self.tls_cert
        doc["old_domain"] = self.old_domain
        doc["domain"] = self.domain
        doc["created_at"] = format_time(self.created_at)
        if self.finished_at is not None:
            doc["finished_at"] = format_time(self.finished_at)
        return doc

    @classmethod
    def from_json(cls, doc: JSON) -> DomainMigration:
        finished = doc.get("finished_at")
        return cls(
            id=doc["id"],
            old_domain=doc["old_domain"],
            domain=doc["domain"],
            created_at=parse_time(doc["created_at"]),
            old_tls_cert=doc.get("old_tls_cert"),
            tls_cert=doc.get("tls_cert"),
            finished_at=parse_time(finished) if finished else None,
        )


def _ident_or_none(value: str | None) -> str | None:
    return None if value is None else ident(value)
