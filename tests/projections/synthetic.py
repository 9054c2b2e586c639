"""A synthetic log: many apps with the usual lifecycle, jobs dominating, as raw events.

Appended straight to a store (no dispatcher), for volume: the projector tests that need
many events, and the rebuild rate (`python -m tests.projections.rebuild_rate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from domain.codec import encode
from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    ArtifactCreated,
    DeploymentCreated,
    DeploymentStatusChanged,
    Event,
    FormationScaled,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    ResourceCreated,
    RouteCreated,
    RouteDeleted,
)
from domain.objects import App, Artifact, Deployment, Job, Provider, Release, Resource, Route
from domain.states import DeploymentStatus, JobState
from eventstore.store import EventStore
from tests.projections.history import DOMAIN, T0, uid

PROVIDER = uid(1)
_WEB = {"web": {"cmd": ["start"], "resources": {"memory": {"limit": 1, "request": 1}}}}


def app_events(n: int, jobs: int, at: datetime) -> Iterator[Event]:
    """App number `n`: created, released, scaled, deployed, `jobs` jobs started (and some
    stopped); every 10th also shares a resource with the previous app, every 7th is deleted."""
    app_id, art_id, rel_id, route_id, dep_id = (uid(n * 16 + k) for k in range(2, 7))
    app = App(app_id, f"app-{n}", at, at, meta={"team": str(n % 5)})
    route = Route(
        "http",
        route_id,
        f"controller/apps/{app_id}",
        f"app-{n}-web",
        at,
        at,
        domain=f"app-{n}.{DOMAIN}",
        path="/",
    )
    release = Release(rel_id, at, art_id, env={"N": str(n)}, processes=_WEB, app_id=app_id)
    yield AppCreated(app)
    yield RouteCreated(route)
    yield ArtifactCreated(Artifact(art_id, "docker", f"https://registry.test/app-{n}", at))
    yield ReleaseCreated(release)
    yield DeploymentCreated(
        Deployment(
            dep_id, app_id, rel_id, "all-at-once", DeploymentStatus.PENDING, {"web": 2}, 30, at
        )
    )
    yield FormationScaled(app_id, rel_id, {"web": 2})
    yield DeploymentStatusChanged(app_id, dep_id, rel_id, DeploymentStatus.RUNNING, "web", "up")
    for j in range(jobs):
        job = Job(
            f"host{j % 3}-{uid(n * 1000 + j)}", app_id, rel_id, JobState.STARTING, at, at, "web"
        )
        yield JobStateChanged(job)
        yield JobStateChanged(Job(job.id, app_id, rel_id, JobState.UP, at, at, "web"))
        if j % 4 == 3:
            yield JobStateChanged(Job(job.id, app_id, rel_id, JobState.DOWN, at, at, "web"))
    yield DeploymentStatusChanged(app_id, dep_id, rel_id, DeploymentStatus.COMPLETE)
    yield AppReleaseSet(app_id, release)
    if n % 10 == 9:
        previous_app = uid(n * 16 - 14)
        resource = Resource(uid(n * 16 + 8), PROVIDER, at, f"db-{n}", apps=(app_id, previous_app))
        yield from (ResourceCreated(resource, a) for a in resource.apps)
    if n % 7 == 6:
        yield RouteDeleted(route)
        yield AppDeleted(app_id, (route,))


def synthetic_events(apps: int, jobs: int = 10, first: int = 0) -> Iterator[Event]:
    """Apps number `first` to `first + apps - 1` (about 10 + 2.25 x `jobs` events each),
    after the provider they use when `first` is 0."""
    if first == 0:
        yield ProviderCreated(Provider(PROVIDER, "postgres", "http://pg.test", T0, T0))
    for n in range(first, first + apps):
        yield from app_events(n, jobs, T0 + timedelta(milliseconds=n))


async def append_synthetic(
    store: EventStore, apps: int, jobs: int = 10, first: int = 0, chunk: int = 5000
) -> int:
    """Append synthetic_events() in chunks; returns how many events were written."""
    written = 0
    pending = []
    for event in synthetic_events(apps, jobs, first):
        pending.append(encode(event))
        if len(pending) == chunk:
            written += len(await store.append(pending))
            pending = []
    if pending:
        written += len(await store.append(pending))
    return written
