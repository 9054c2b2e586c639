"""The ReadModel protocol: the queries every read model answers, with Flynn's JSON as the
API returns it; MemoryQueries, the protocol over the in-memory model; and the canonical
snapshot both produce, so that two models (or two replays) can be compared whole.

Lists are newest first: by created_at, then by id (release id for formations), both
descending, as Flynn's `ORDER BY created_at DESC` with a deterministic tie-break.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from domain.objects import JSON
from projections import apps, deployments, formations, jobs, providers, releases, routes
from projections.memory import MemoryReadModel
from projections.state import State

#: The kinds of objects a snapshot holds, each a map of key -> Flynn JSON. Deleted apps
#: and formations are kept apart; deleted routes and resources are gone.
SNAPSHOT_KINDS = (
    "apps",
    "deleted_apps",
    "releases",
    "artifacts",
    "formations",  # key "<app id>:<release id>"
    "deleted_formations",
    "jobs",
    "deployments",
    "providers",
    "resources",
    "routes",
    "domain_migrations",
)


def canonical_snapshot(
    last_event_id: int,
    kinds: Mapping[str, Mapping[str, JSON]],
    app_releases: Mapping[str, Iterable[str]],
) -> JSON:
    """Every kind present (maybe empty), keys sorted, and each app's release ids sorted."""
    snapshot: JSON = {"last_event_id": last_event_id}
    for kind in SNAPSHOT_KINDS:
        objects = kinds.get(kind, {})
        snapshot[kind] = {key: objects[key] for key in sorted(objects)}
    links = {app: sorted(ids) for app, ids in app_releases.items()}
    snapshot["app_releases"] = {app: links[app] for app in sorted(links) if links[app]}
    return snapshot


class ReadModel(Protocol):
    """What the API reads. `None` is "not found"; deleted objects are not found."""

    async def last_event_id(self) -> int:
        """The id of the last event folded in."""
        ...

    async def app(self, ref: str) -> JSON | None:
        """A live app by id or name (a uuid-shaped ref is an id first)."""
        ...

    async def apps(self) -> list[JSON]: ...
    async def release(self, release_id: str) -> JSON | None: ...
    async def releases(self) -> list[JSON]: ...
    async def app_releases(self, app_id: str) -> list[JSON]:
        """The releases an app has had: its own, set as current, or scaled."""
        ...

    async def artifact(self, artifact_id: str) -> JSON | None: ...
    async def artifacts(self) -> list[JSON]: ...
    async def formation(self, app_id: str, release_id: str) -> JSON | None: ...
    async def app_formations(self, app_id: str) -> list[JSON]: ...
    async def jobs(self, app_id: str) -> list[JSON]: ...
    async def job(self, job_id: str) -> JSON | None: ...
    async def routes(self, app_id: str) -> list[JSON]: ...
    async def route(self, route_id: str) -> JSON | None: ...
    async def deployments(self, app_id: str) -> list[JSON]: ...
    async def deployment(self, deployment_id: str) -> JSON | None: ...
    async def providers(self) -> list[JSON]: ...
    async def provider(self, ref: str) -> JSON | None:
        """A provider by id or name (the same rule as apps)."""
        ...

    async def resource(self, resource_id: str) -> JSON | None: ...
    async def resources(self, provider_id: str) -> list[JSON]: ...
    async def app_resources(self, app_id: str) -> list[JSON]: ...
    async def domain_migrations(self) -> list[JSON]: ...
    async def snapshot(self) -> JSON:
        """Every object of every kind (see canonical_snapshot)."""
        ...


def _json(obj: Any) -> JSON | None:
    return None if obj is None else obj.to_json()  # type: ignore[no-any-return, unused-ignore]


def _jsons(objects: Iterable[Any]) -> list[JSON]:
    return [obj.to_json() for obj in objects]


class MemoryQueries:
    """The ReadModel protocol over a MemoryReadModel (what it holds now): the queries of
    projections/<resource>.py, which the API serves, answered in Flynn's JSON."""

    def __init__(self, model: MemoryReadModel) -> None:
        self.model = model

    @property
    def state(self) -> State:
        return self.model.state

    async def last_event_id(self) -> int:
        return self.model.last_id

    async def app(self, ref: str) -> JSON | None:
        return _json(apps.find_app(self.state, ref))

    async def apps(self) -> list[JSON]:
        return _jsons(apps.all_apps(self.state))

    async def release(self, release_id: str) -> JSON | None:
        return _json(releases.release(self.state, release_id))

    async def releases(self) -> list[JSON]:
        return _jsons(releases.all_releases(self.state))

    async def app_releases(self, app_id: str) -> list[JSON]:
        return _jsons(releases.app_releases(self.state, app_id))

    async def artifact(self, artifact_id: str) -> JSON | None:
        return _json(releases.artifact(self.state, artifact_id))

    async def artifacts(self) -> list[JSON]:
        return _jsons(releases.all_artifacts(self.state))

    async def formation(self, app_id: str, release_id: str) -> JSON | None:
        return _json(formations.formation(self.state, app_id, release_id))

    async def app_formations(self, app_id: str) -> list[JSON]:
        return _jsons(formations.app_formations(self.state, app_id))

    async def jobs(self, app_id: str) -> list[JSON]:
        return _jsons(jobs.app_jobs(self.state, app_id))

    async def job(self, job_id: str) -> JSON | None:
        return _json(jobs.job(self.state, job_id))

    async def routes(self, app_id: str) -> list[JSON]:
        return _jsons(routes.app_routes(self.state, app_id))

    async def route(self, route_id: str) -> JSON | None:
        return _json(routes.route(self.state, route_id))

    async def deployments(self, app_id: str) -> list[JSON]:
        return _jsons(deployments.app_deployments(self.state, app_id))

    async def deployment(self, deployment_id: str) -> JSON | None:
        return _json(deployments.deployment(self.state, deployment_id))

    async def providers(self) -> list[JSON]:
        return _jsons(providers.all_providers(self.state))

    async def provider(self, ref: str) -> JSON | None:
        return _json(providers.find_provider(self.state, ref))

    async def resource(self, resource_id: str) -> JSON | None:
        return _json(providers.resource(self.state, resource_id))

    async def resources(self, provider_id: str) -> list[JSON]:
        return _jsons(providers.provider_resources(self.state, provider_id))

    async def app_resources(self, app_id: str) -> list[JSON]:
        return _jsons(providers.app_resources(self.state, app_id))

    async def domain_migrations(self) -> list[JSON]:
        return _jsons(routes.all_domain_migrations(self.state))

    async def snapshot(self) -> JSON:
        s = self.state
        formations = {f"{app}:{release}": f for (app, release), f in s.formations.items()}
        kinds: dict[str, dict[str, JSON]] = {
            "apps": _by_key(s.apps),
            "deleted_apps": _by_key(s.deleted_apps),
            "releases": _by_key(s.releases),
            "artifacts": _by_key(s.artifacts),
            "formations": {k: f.to_json() for k, f in formations.items() if not f.deleted},
            "deleted_formations": {k: f.to_json() for k, f in formations.items() if f.deleted},
            "jobs": _by_key(s.jobs),
            "deployments": _by_key(s.deployments),
            "providers": _by_key(s.providers),
            "resources": _by_key(s.resources),
            "routes": _by_key(s.routes),
            "domain_migrations": _by_key(s.domain_migrations),
        }
        return canonical_snapshot(self.model.last_id, kinds, s.app_releases)


def _by_key(objects: Mapping[str, Any]) -> dict[str, JSON]:
    return {key: obj.to_json() for key, obj in objects.items()}
