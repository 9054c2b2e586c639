"""The fold of the log: State, and apply(state, event) with one case per event type.

Every mutation goes through State.put/State.drop so that the dispatcher can apply a batch
of decided events speculatively and take them back (State.rollback) if the append fails.
Orders that clients see (newest first) are computed at read time from created_at, as
Flynn's SQL does, so nothing here depends on dict order.
"""

from __future__ import annotations

from collections import OrderedDict
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
from domain.keys import Key, KeyCreated, KeyRevoked
from domain.objects import (
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
from domain.states import ENDED_JOB_STATES, FINISHED_DEPLOYMENT_STATUSES, JobState
from projections.causes import CauseIndex
from projections.idempotency import IdempotencyIndex

MISSING: Any = object()  # a journal entry's previous value where there was none
Index = dict[str, dict[str, None]]  # owner id -> set of member ids (a dict, for put/drop)
#: One journaled mutation: (container, key, previous value or MISSING), and for a member of
#: an index also (index, owner), so that a reader of the journal knows whose member it was.
Entry = tuple[Any, ...]
#: What a deployment counts a job report as: up, or down (ended in any way).
_PHASES = {JobState.UP: JobState.UP} | {state: JobState.DOWN for state in ENDED_JOB_STATES}


@attrs.frozen
class DeploymentProgress:
    """What an unfinished deployment has done and seen: the deployer's next step derives from it.

    `steps` counts its `running` events by (release, job_type, job_state); `reports` counts the
    jobs of its app that came "up" or went "down" while it was in flight, by (release, type,
    "up" | "down") — log order, not clocks, says "while". `touched_at` is the commit time of
    its latest event: its waits time out from there.
    """

    touched_at: datetime
    steps: dict[tuple[str, str, str], int] = attrs.field(factory=dict)
    reports: dict[tuple[str, str, str], int] = attrs.field(factory=dict)


@attrs.define(eq=False)
class State:
    apps: dict[str, App] = attrs.field(factory=dict)  # live apps
    deleted_apps: dict[str, App] = attrs.field(factory=dict)
    app_ids_by_name: dict[str, str] = attrs.field(factory=dict)  # live names only
    counters: dict[str, int] = attrs.field(factory=dict)
    artifacts: dict[str, Artifact] = attrs.field(factory=dict)
    artifact_ids_by_key: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (type, uri)
    releases: dict[str, Release] = attrs.field(factory=dict)  # live releases
    # Deleted for good: jobs that ran them may still report (Flynn soft-deletes).
    deleted_releases: dict[str, Release] = attrs.field(factory=dict)
    app_releases: Index = attrs.field(factory=dict)
    # Release -> the apps besides its own (app_id) that list it: set as current or scaled.
    # Only such links, so that a release used by its app alone costs nothing here.
    release_users: Index = attrs.field(factory=dict)
    formations: dict[tuple[str, str], Formation] = attrs.field(factory=dict)  # (app, release)
    app_formations: Index = attrs.field(factory=dict)  # app -> release ids
    jobs: dict[str, Job] = attrs.field(factory=dict)
    app_jobs: Index = attrs.field(factory=dict)
    deployments: dict[str, Deployment] = attrs.field(factory=dict)
    app_deployments: Index = attrs.field(factory=dict)
    deploying: dict[str, str] = attrs.field(factory=dict)  # app -> its unfinished deployment
    # Every unfinished deployment, a deleted app's too (the deployer ends those `failed`).
    deployment_progress: dict[str, DeploymentProgress] = attrs.field(factory=dict)
    providers: dict[str, Provider] = attrs.field(factory=dict)
    provider_ids_by_name: dict[str, str] = attrs.field(factory=dict)
    provider_ids_by_url: dict[str, str] = attrs.field(factory=dict)
    resources: dict[str, Resource] = attrs.field(factory=dict)
    provider_resources: Index = attrs.field(factory=dict)
    app_resources: Index = attrs.field(factory=dict)
    routes: dict[str, Route] = attrs.field(factory=dict)
    app_routes: Index = attrs.field(factory=dict)
    http_routes: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (domain, path) -> id
    tcp_routes: dict[int, str] = attrs.field(factory=dict)  # port -> id
    domain_migrations: dict[str, DomainMigration] = attrs.field(factory=dict)
    # Idempotency-Keys recorded lately (projections.idempotency); kept by the read model's
    # fold of records, not by apply: a key is in an event's meta, not in the event.
    idempotency: IdempotencyIndex = attrs.field(factory=OrderedDict)
    # API keys by name, revoked ones too (a name is never given twice) ...
    keys: dict[str, Key] = attrs.field(factory=dict)
    # ... and the live ones by their secret's SHA-256: how a request's key is found.
    live_keys: dict[str, Key] = attrs.field(factory=dict)
    # What the scheduler and the deployer act on, and its cause (projections.causes):
    # folded from records beside apply, as the idempotency index.
    causes: CauseIndex = attrs.field(factory=dict)
    # Entries (see Entry), newest last; None when not recording. The dispatcher takes a
    # speculative batch back with it (rollback); the read model hands a folded batch's to
    # projections.changes, which says what the batch changed.
    journal: list[Entry] | None = None

    # -- journaled mutation ----------------------------------------------------------

    def put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if self.journal is not None:
            self.journal.append((table, key, table.get(key, MISSING)))
        table[key] = value

    def drop(self, table: dict[Any, Any], key: Any) -> None:
        if key not in table:
            return
        if self.journal is not None:
            self.journal.append((table, key, table[key]))
        del table[key]

    def link(self, index: Index, owner: str, member: str) -> None:
        members = index.get(owner)
        if members is None:
            members = {}
            self.put(index, owner, members)
        if member not in members:
            if self.journal is not None:
                self.journal.append((members, member, MISSING, index, owner))
            members[member] = None

    def unlink(self, index: Index, owner: str, member: str) -> None:
        members = index.get(owner)
        if members is not None and member in members:
            if self.journal is not None:
                self.journal.append((members, member, None, index, owner))
            del members[member]

    def record(self) -> None:
        """Start recording mutations, so that rollback() can take them back."""
        self.journal = []

    def savepoint(self) -> int:
        return len(self.journal or ())

    def rollback(self, savepoint: int = 0) -> None:
        """Undo every mutation recorded since `savepoint` (recording goes on)."""
        journal = self.journal or []
        for entry in reversed(journal[savepoint:]):
            table, key, previous = entry[0], entry[1], entry[2]
            if previous is MISSING:
                table.pop(key, None)
            else:
                table[key] = previous
        del journal[savepoint:]

    def stop_recording(self) -> None:
        self.journal = None

    # -- lookups the deciders share ---------------------------------------------------

    def app_named(self, name: str) -> App | None:
        app_id = self.app_ids_by_name.get(name)
        return None if app_id is None else self.apps[app_id]

    def release_apps(self, release_id: str) -> list[str]:
        """The live apps that list the release (see app_releases), by id."""
        release = self.releases.get(release_id)
        candidates = {*self.release_users.get(release_id, {})}
        if release is not None and release.app_id:
            candidates.add(release.app_id)
        return sorted(
            a for a in candidates if a in self.apps and release_id in self.app_releases.get(a, {})
        )

    def formation(self, app_id: str, release_id: str) -> Formation | None:
        """The live formation, if any (a deleted one is None)."""
        formation = self.formations.get((app_id, release_id))
        return None if formation is None or formation.deleted else formation


def apply(state: State, event: Event, at: datetime) -> None:
    """Fold one event into `state`; `at` is the event's commit time."""
    # The most frequent kinds first: a match tries its cases in order.
    match event:
        case JobStateChanged(job=job):
            _job_reported(state, job)  # before the put: it compares with the previous report
            state.put(state.jobs, job.id, job)
            state.link(state.app_jobs, job.app_id, job.id)
        case DeploymentStatusChanged():
            _deployment_progressed(state, event, at)
        case FormationScaled():
            _scale(state, event, at)
        case ReleaseCreated(release=release):
            state.put(state.releases, release.id, release)
            if release.app_id:
                state.link(state.app_releases, release.app_id, release.id)
        case ArtifactCreated(artifact=artifact):
            state.put(state.artifacts, artifact.id, artifact)
            state.put(state.artifact_ids_by_key, (artifact.type, artifact.uri), artifact.id)
        case AppReleaseSet(app=app_id, release=release):
            app = state.apps.get(app_id)
            if app is not None:
                state.put(
                    state.apps, app_id, attrs.evolve(app, release_id=release.id, updated_at=at)
                )
            _link_release(state, app_id, release.id, release.app_id)
        case DeploymentCreated(deployment=deployment):
            state.put(state.deployments, deployment.id, deployment)
            state.link(state.app_deployments, deployment.app_id, deployment.id)
            if not deployment.finished:
                state.put(state.deploying, deployment.app_id, deployment.id)
                state.put(state.deployment_progress, deployment.id, DeploymentProgress(at))
        case AppCreated(app=app):
            state.put(state.apps, app.id, app)
            state.put(state.app_ids_by_name, app.name, app.id)
            state.put(state.counters, "apps_created", state.counters.get("apps_created", 0) + 1)
        case AppUpdated(app=app):
            state.put(state.apps, app.id, app)
        case AppDeleted():
            _delete_app(state, event.app, at)
        case ReleaseDeleted():
            _delete_release(state, event, at)
        case ProviderCreated(provider=provider):
            state.put(state.providers, provider.id, provider)
            state.put(state.provider_ids_by_name, provider.name, provider.id)
            state.put(state.provider_ids_by_url, provider.url, provider.id)
        case ResourceCreated(resource=resource):
            _put_resource(state, resource)
        case ResourceDeleted(resource=resource):
            _drop_resource(state, resource.id)
        case RouteCreated(route=route) | RouteUpdated(route=route):
            _put_route(state, route)
        case RouteDeleted(route=route):
            _drop_route(state, route.id)
        case DomainMigrated(migration=migration):
            state.put(state.domain_migrations, migration.id, migration)
        case KeyCreated(key=key):
            state.put(state.keys, key.name, key)
            if key.revoked_at is None:
                state.put(state.live_keys, key.secret_sha256, key)
        case KeyRevoked(name=name, revoked_at=revoked_at):
            _revoke_key(state, name, revoked_at)
        case _:
            assert_never(event)


def _revoke_key(state: State, name: str, revoked_at: datetime) -> None:
    key = state.keys.get(name)
    if key is None or key.revoked_at is not None:
        return
    state.put(state.keys, name, attrs.evolve(key, revoked_at=revoked_at))
    state.drop(state.live_keys, key.secret_sha256)


def _delete_app(state: State, app_id: str, at: datetime) -> None:
    app = state.apps.get(app_id)
    if app is None:
        return
    state.drop(state.apps, app_id)
    state.drop(state.app_ids_by_name, app.name)
    state.put(state.deleted_apps, app_id, attrs.evolve(app, updated_at=at))
    # Flynn soft-deletes the app's formations without scale events; the scheduler sees
    # the formations go away.
    for release_id in state.app_formations.get(app_id, {}):
        formation = state.formations[(app_id, release_id)]
        if not formation.deleted:
            state.put(
                state.formations,
                (app_id, release_id),
                attrs.evolve(formation, processes=None, updated_at=at),
            )
    # Shared resources stay, without this app.
    for resource_id in list(state.app_resources.get(app_id, {})):
        resource = state.resources.get(resource_id)
        if resource is not None:
            apps = tuple(a for a in resource.apps if a != app_id)
            state.put(state.resources, resource_id, attrs.evolve(resource, apps=apps))
        state.unlink(state.app_resources, app_id, resource_id)
    for route_id in list(state.app_routes.get(app_id, {})):
        _drop_route(state, route_id)
    state.drop(state.deploying, app_id)


def _delete_release(state: State, event: ReleaseDeleted, at: datetime) -> None:
    """The release leaves the app's list and its formation there (soft-deleted, as Flynn's
    formation_delete); with no app left using it, it is gone from the release lists too."""
    state.unlink(state.app_releases, event.app, event.release)
    state.unlink(state.release_users, event.release, event.app)
    key = (event.app, event.release)
    formation = state.formations.get(key)
    if formation is not None and not formation.deleted:
        state.put(state.formations, key, attrs.evolve(formation, processes=None, updated_at=at))
    release = state.releases.get(event.release)
    if release is not None and not event.remaining_apps:
        state.drop(state.releases, event.release)
        state.put(state.deleted_releases, event.release, release)


def _scale(state: State, event: FormationScaled, at: datetime) -> None:
    key = (event.app, event.release)
    current = state.formations.get(key)
    if event.processes is None:
        if current is not None:
            state.put(state.formations, key, attrs.evolve(current, processes=None, updated_at=at))
        return
    created_at = current.created_at if current is not None and not current.deleted else at
    formation = Formation(event.app, event.release, created_at, at, dict(event.processes))
    state.put(state.formations, key, formation)
    state.link(state.app_formations, event.app, event.release)
    release = state.releases.get(event.release)
    _link_release(state, event.app, event.release, release.app_id if release else None)


def _link_release(state: State, app_id: str, release_id: str, owner: str | None) -> None:
    state.link(state.app_releases, app_id, release_id)
    if app_id != owner:
        state.link(state.release_users, release_id, app_id)


def _deployment_progressed(state: State, event: DeploymentStatusChanged, at: datetime) -> None:
    deployment = state.deployments.get(event.deployment)
    if deployment is None:
        return
    finished = event.status in FINISHED_DEPLOYMENT_STATUSES
    # The constructor, not attrs.evolve: evolve looks up the class's fields on every call,
    # and progress events are a quarter of a busy log (fold of 1M events: -10 % time).
    d = deployment
    progressed = Deployment(
        d.id, d.app_id, d.new_release_id, d.strategy, event.status, d.processes,
        d.deploy_timeout, d.created_at, d.old_release_id,
        at if finished else d.finished_at, event.error or d.error,
    )  # fmt: skip
    state.put(state.deployments, d.id, progressed)
    if finished and state.deploying.get(deployment.app_id) == deployment.id:
        state.drop(state.deploying, deployment.app_id)
    progress = state.deployment_progress.get(deployment.id)
    if finished or progress is None:
        state.drop(state.deployment_progress, deployment.id)
        return
    key = (event.release, event.job_type, event.job_state)
    steps = {**progress.steps, key: progress.steps.get(key, 0) + 1}
    state.put(state.deployment_progress, d.id, DeploymentProgress(at, steps, progress.reports))


def _job_reported(state: State, job: Job) -> None:
    """Count a job coming up or going down while its app has a deployment in flight."""
    deployment_id = state.deploying.get(job.app_id)
    progress = None if deployment_id is None else state.deployment_progress.get(deployment_id)
    if deployment_id is None or progress is None:
        return
    previous = state.jobs.get(job.id)
    phase = _job_phase(job.state)
    if phase is None or (previous is not None and _job_phase(previous.state) == phase):
        return
    key = (job.release_id, job.type, phase)
    reports = {**progress.reports, key: progress.reports.get(key, 0) + 1}
    state.put(
        state.deployment_progress,
        deployment_id,
        DeploymentProgress(progress.touched_at, progress.steps, reports),
    )


def _job_phase(job_state: JobState) -> JobState | None:
    return _PHASES.get(job_state)


def _put_resource(state: State, resource: Resource) -> None:
    previous = state.resources.get(resource.id)
    if previous is not None:
        for app_id in previous.apps:
            state.unlink(state.app_resources, app_id, resource.id)
    state.put(state.resources, resource.id, resource)
    state.link(state.provider_resources, resource.provider_id, resource.id)
    for app_id in resource.apps:
        state.link(state.app_resources, app_id, resource.id)


def _drop_resource(state: State, resource_id: str) -> None:
    resource = state.resources.get(resource_id)
    if resource is None:
        return
    state.drop(state.resources, resource_id)
    state.unlink(state.provider_resources, resource.provider_id, resource_id)
    for app_id in resource.apps:
        state.unlink(state.app_resources, app_id, resource_id)


def _put_route(state: State, route: Route) -> None:
    _drop_route(state, route.id)
    state.put(state.routes, route.id, route)
    if route.app_id:
        state.link(state.app_routes, route.app_id, route.id)
    if route.type == "tcp":
        state.put(state.tcp_routes, route.port, route.id)
    else:
        state.put(state.http_routes, (route.domain, route.path), route.id)


def _drop_route(state: State, route_id: str) -> None:
    route = state.routes.get(route_id)
    if route is None:
        return
    state.drop(state.routes, route_id)
    if route.app_id:
        state.unlink(state.app_routes, route.app_id, route_id)
    if route.type == "tcp":
        if state.tcp_routes.get(route.port) == route_id:
            state.drop(state.tcp_routes, route.port)
    elif state.http_routes.get((route.domain, route.path)) == route_id:
        state.drop(state.http_routes, (route.domain, route.path))
