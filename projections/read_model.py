"""The ReadModel protocol: the queries every read model answers, with Flynn's JSON as the
API returns it; MemoryQueries, the protocol over the in-memory model; and the canonical
snapshot both produce, so that two models (or two replays) can be compared whole.

Lists are newest first: by created_at, then by id (release id for formations), both
descending, as Flynn's `ORDER BY created_at DESC` with a deterministic tie-break.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from domain.objects import JSON, Formation
from projections.memory import MemoryReadModel, newest_first
from projections.state import State, find_app, find_provider

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


def _newest(objects: Iterable[Any]) -> list[JSON]:
    return [obj.to_json() for obj in newest_first(objects, lambda o: (o.created_at, o.id))]


def _newest_formations(formations: Iterable[Formation]) -> list[JSON]:
    ordered = newest_first(formations, lambda f: (f.created_at, f.release_id))
    return [f.to_json() for f in ordered]


class MemoryQueries:
    """The ReadModel protocol over a MemoryReadModel (what it holds now)."""

    def __init__(self, model: MemoryReadModel) -> None:
        self.model = model

    @property
    def state(self) -> State:
        return self.model.state

    async def last_event_id(self) -> int:
        return self.model.last_id

    async def app(self, ref: str) -> JSON | None:
        return _json(find_app(self.state, ref))

    async def apps(self) -> list[JSON]:
        return _newest(self.state.apps.values())

    async def release(self, release_id: str) -> JSON | None:
        return _json(self.state.releases.get(release_id))

    async def releases(self) -> list[JSON]:
        return _newest(self.state.releases.values())

    async def app_releases(self, app_id: str) -> list[JSON]:
        releases = self.state.releases
        ids = self.state.app_releases.get(app_id, {})
        return _newest(releases[r] for r in ids if r in releases)

    async def artifact(self, artifact_id: str) -> JSON | None:
        return _json(self.state.artifacts.get(artifact_id))

    async def artifacts(self) -> list[JSON]:
        return _newest(self.state.artifacts.values())

    async def formation(self, app_id: str, release_id: str) -> JSON | None:
        return _json(self.state.formation(app_id, release_id))

    async def app_formations(self, app_id: str) -> list[JSON]:
        release_ids = self.state.app_formations.get(app_id, {})
        formations = (self.state.formation(app_id, r) for r in release_ids)
        return _newest_formations(f for f in formations if f is not None)

    async def jobs(self, app_id: str) -> list[JSON]:
        return _newest(self.state.jobs[j] for j in self.state.app_jobs.get(app_id, {}))

    async def job(self, job_id: str) -> JSON | None:
        return _json(self.state.jobs.get(job_id))

    async def routes(self, app_id: str) -> list[JSON]:
        return _newest(self.state.routes[r] for r in self.state.app_routes.get(app_id, {}))

    async def route(self, route_id: str) -> JSON | None:
        return _json(self.state.routes.get(route_id))

    async def deployments(self, app_id: str) -> list[JSON]:
        ids = self.state.app_deployments.get(app_id, {})
        return _newest(self.state.deployments[d] for d in ids)

    async def deployment(self, deployment_id: str) -> JSON | None:
        return _json(self.state.deployments.get(deployment_id))

    async def providers(self) -> list[JSON]:
        return _newest(self.state.providers.values())

    async def provider(self, ref: str) -> JSON | None:
        return _json(find_provider(self.state, ref))

    async def resource(self, resource_id: str) -> JSON | None:
        return _json(self.state.resources.get(resource_id))

    async def resources(self, provider_id: str) -> list[JSON]:
        resources = self.state.resources
        ids = self.state.provider_resources.get(provider_id, {})
        # The index keeps a resource under every provider it ever had: check it still does.
        return _newest(
            resources[r] for r in ids if r in resources and resources[r].provider_id == provider_id
        )

    async def app_resources(self, app_id: str) -> list[JSON]:
        return _newest(self.state.resources[r] for r in self.state.app_resources.get(app_id, {}))

    async def domain_migrations(self) -> list[JSON]:
        return _newest(self.state.domain_migrations.values())

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
