"""The ReadModel query contract, run against the in-memory model and the SQL one alike."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from commands.apps import CreateApp, DeleteApp, SetAppRelease, UpdateApp
from commands.releases import CreateArtifact, CreateRelease, DeleteRelease
from domain.events import (
    DeploymentCreated,
    DeploymentStatusChanged,
    DomainMigrated,
    FormationScaled,
    JobStateChanged,
    ProviderCreated,
    ResourceCreated,
    RouteCreated,
)
from domain.objects import Deployment, DomainMigration, Job, Provider, Resource, Route
from domain.states import DeploymentStatus, JobState
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from projections.read_model import MemoryQueries, ReadModel
from projections.sql import SqlReadModel
from replay.restore import rebuild_sql
from tests.projections.history import DOMAIN, History, uid

ALPHA, BETA, GAMMA = uid(0xA1), uid(0xB2), uid(0xC3)
ART1, ART2 = uid(0xAA1), uid(0xAA2)
REL1, REL2, SEED, GONE = uid(0xE1), uid(0xE2), uid(0xE3), uid(0xE4)
ROUTE, TCP, GAMMA_ROUTE = uid(0xF1), uid(0xF2), uid(0xF3)
PROVIDER, SHARED, ONLY_GAMMA, UNLINKED = uid(0xD0), uid(0xD1), uid(0xD2), uid(0xD3)
DEPLOY, MIGRATION = uid(0xDE), uid(0xDF)
JOB1, JOB2, JOB3 = (f"host-{uid(0x10 + n)}" for n in range(3))


async def build(h: History) -> None:
    """Three apps (gamma deleted at the end) with releases (one deleted, one shared by beta
    and gamma), formations, jobs, routes, a provider with resources, a deployment and a
    domain migration."""
    await h.do(CreateApp(ALPHA, h.now(), name="alpha", default_route_domain=DOMAIN, route_id=ROUTE))
    await h.do(CreateApp(BETA, h.now(), name="beta"))
    await h.do(CreateApp(GAMMA, h.now(), name="gamma"))
    await h.do(CreateArtifact(ART1, "docker", "https://example.com/1", h.now()))
    await h.do(CreateArtifact(ART2, "docker", "https://example.com/2", h.now()))
    web = {"web": {"cmd": ["start"]}}
    await h.do(CreateRelease(REL1, h.now(), artifact_id=ART1, processes=web, app=ALPHA))
    await h.do(CreateRelease(REL2, h.now(), artifact_id=ART2, processes=web, app=ALPHA))
    await h.do(CreateRelease(SEED, h.now(), artifact_id=ART1))
    await h.do(SetAppRelease(ALPHA, REL2, h.now()))
    await h.do(SetAppRelease(BETA, SEED, h.now()))
    await h.do(CreateRelease(GONE, h.now(), artifact_id=ART2, processes=web, app=ALPHA))
    await h.emit(FormationScaled(ALPHA, GONE, {"web": 0}))
    assert await h.do(DeleteRelease(ALPHA, GONE, h.now()))
    await h.emit(FormationScaled(ALPHA, REL1, {"web": 1}))
    await h.emit(FormationScaled(ALPHA, REL2, {"web": 2, "worker": 1}))
    await h.emit(FormationScaled(ALPHA, REL1, None, {"web": 1}))
    await h.emit(FormationScaled(GAMMA, SEED, {"web": 1}))
    t = h.now()
    await h.emit(JobStateChanged(Job(JOB1, ALPHA, REL2, JobState.STARTING, t, t, type="web")))
    await h.emit(JobStateChanged(Job(JOB1, ALPHA, REL2, JobState.UP, t, h.now(), type="web")))
    t = h.now()
    await h.emit(JobStateChanged(Job(JOB2, ALPHA, REL2, JobState.UP, t, t, type="worker")))
    await h.emit(JobStateChanged(Job(JOB3, BETA, SEED, JobState.DOWN, t, t, exit_status=1)))
    t = h.now()
    await h.emit(
        RouteCreated(Route("tcp", TCP, f"controller/apps/{BETA}", "beta", t, t, port=3000))
    )
    await h.emit(
        RouteCreated(
            Route(
                "http",
                GAMMA_ROUTE,
                f"controller/apps/{GAMMA}",
                "gamma-web",
                t,
                t,
                domain=f"gamma.{DOMAIN}",
                path="/",
            )
        )
    )
    await h.emit(ProviderCreated(Provider(PROVIDER, "postgres", "http://pg", h.now(), h.now())))
    t = h.now()
    shared = Resource(SHARED, PROVIDER, t, "db1", {"URL": "pg://1"}, (ALPHA, GAMMA))
    await h.emit(ResourceCreated(shared, ALPHA), ResourceCreated(shared, GAMMA))
    gammas = Resource(ONLY_GAMMA, PROVIDER, h.now(), "db2", apps=(GAMMA,))
    await h.emit(ResourceCreated(gammas, GAMMA))
    await h.emit(ResourceCreated(Resource(UNLINKED, PROVIDER, h.now(), "db3")))
    deployment = Deployment(
        DEPLOY,
        ALPHA,
        REL2,
        "all-at-once",
        DeploymentStatus.PENDING,
        {"web": 2},
        30,
        h.now(),
        old_release_id=REL1,
    )
    await h.emit(DeploymentCreated(deployment))
    await h.emit(
        DeploymentStatusChanged(ALPHA, DEPLOY, REL2, DeploymentStatus.RUNNING, "web", "up")
    )
    await h.emit(DeploymentStatusChanged(ALPHA, DEPLOY, REL2, DeploymentStatus.COMPLETE))
    await h.emit(DomainMigrated(DomainMigration(MIGRATION, "old.test", DOMAIN, h.now())))
    await h.do(UpdateApp(BETA, h.now(), meta={"owner": "ops"}))
    assert await h.do(DeleteApp(GAMMA, h.now(), (ONLY_GAMMA,)))


@pytest.fixture(params=["memory", pytest.param("sql", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest) -> Callable[[], Awaitable[EventStore]]:
    if request.param == "memory":

        async def memory() -> EventStore:
            return InMemoryEventStore()

        return memory
    make_database = request.getfixturevalue("make_database")

    async def postgres() -> EventStore:
        return await PostgresEventStore.open(await make_database())

    return postgres


@pytest.fixture
async def model(make_store: Callable[[], Awaitable[EventStore]]) -> AsyncIterator[ReadModel]:
    """The history above, read through one kind of read model."""
    store = await make_store()
    async with History(store) as h:
        await build(h)
    if isinstance(store, PostgresEventStore):
        await rebuild_sql(store)
        yield SqlReadModel(store.pool)
    else:
        yield MemoryQueries(h.model)
    await store.close()


def ids(docs: list[dict[str, Any]], key: str = "id") -> list[str]:
    return [doc[key] for doc in docs]


async def test_an_app_is_found_by_id_by_name_and_by_its_undashed_id(model: ReadModel):
    """app() takes an id, a name, or a uuid without dashes."""
    alpha = await model.app(ALPHA)
    assert alpha is not None and alpha["name"] == "alpha"
    assert await model.app("alpha") == alpha
    assert await model.app(ALPHA.replace("-", "")) == alpha
    assert await model.app("nobody") is None


async def test_a_deleted_app_is_neither_found_nor_listed(model: ReadModel):
    """After deletion an app is gone by id and by name, and from the list."""
    assert await model.app(GAMMA) is None
    assert await model.app("gamma") is None
    assert ids(await model.apps()) == [BETA, ALPHA]


async def test_an_app_shows_its_release_and_latest_update(model: ReadModel):
    """Setting a release and updating meta show in the app's JSON."""
    alpha, beta = await model.app(ALPHA), await model.app(BETA)
    assert alpha is not None and alpha["release"] == REL2
    assert beta is not None and beta["meta"] == {"owner": "ops"}
    assert beta["updated_at"] > beta["created_at"]


async def test_releases_and_artifacts_are_listed_newest_first(model: ReadModel):
    """Lists of releases and artifacts are newest first."""
    assert ids(await model.releases()) == [SEED, REL2, REL1]
    assert ids(await model.artifacts()) == [ART2, ART1]
    release = await model.release(REL1)
    assert release is not None and release["artifact"] == ART1 and release["app_id"] == ALPHA
    artifact = await model.artifact(ART2)
    assert artifact is not None and artifact["uri"] == "https://example.com/2"
    assert await model.release(uid(1)) is None and await model.artifact(uid(1)) is None
    assert await model.release(GONE) is None


async def test_app_releases_are_the_ones_it_owns_set_or_scaled_and_not_deleted(model: ReadModel):
    """An app's releases are its own plus any it set or scaled, less the deleted ones; a
    deleted app's releases left it, and one another app still uses stays."""
    assert ids(await model.app_releases(ALPHA)) == [REL2, REL1]
    assert await model.app_releases(GAMMA) == []
    assert ids(await model.app_releases(BETA)) == [SEED]


async def test_only_live_formations_are_found(model: ReadModel):
    """A formation scaled to nothing, or of a deleted app, is not found."""
    formation = await model.formation(ALPHA, REL2)
    assert formation is not None
    assert formation["processes"] == {"web": 2, "worker": 1}
    assert (formation["app"], formation["release"]) == (ALPHA, REL2)
    assert await model.formation(ALPHA, REL1) is None
    assert await model.formation(GAMMA, SEED) is None
    assert ids(await model.app_formations(ALPHA), "release") == [REL2]
    assert await model.app_formations(GAMMA) == []


async def test_jobs_show_their_latest_state_newest_first(model: ReadModel):
    """A job is listed once, in its latest state; the newest job comes first."""
    jobs = await model.jobs(ALPHA)
    assert ids(jobs) == [JOB2, JOB1]
    assert [job["state"] for job in jobs] == ["up", "up"]
    job = await model.job(JOB3)
    assert job is not None and job["exit_status"] == 1 and job["host_id"] == "host"


async def test_routes_of_a_deleted_app_are_gone(model: ReadModel):
    """Routes are listed per app; a deleted app's routes are not found."""
    assert ids(await model.routes(ALPHA)) == [ROUTE]
    assert ids(await model.routes(BETA)) == [TCP]
    route = await model.route(ROUTE)
    assert route is not None and route["domain"] == f"alpha.{DOMAIN}"
    assert await model.routes(GAMMA) == []
    assert await model.route(GAMMA_ROUTE) is None


async def test_a_deployment_shows_its_final_status(model: ReadModel):
    """A completed deployment has its status and finish time."""
    deployment = await model.deployment(DEPLOY)
    assert deployment is not None
    assert deployment["status"] == "complete" and "finished_at" in deployment
    assert deployment["old_release"] == REL1
    assert ids(await model.deployments(ALPHA)) == [DEPLOY]
    assert await model.deployments(BETA) == []


async def test_providers_are_found_by_id_and_by_name(model: ReadModel):
    """A provider is found by id or name and listed."""
    provider = await model.provider("postgres")
    assert provider is not None and provider["id"] == PROVIDER
    assert await model.provider(PROVIDER) == provider
    assert await model.providers() == [provider]
    assert await model.provider("redis") is None


async def test_deleting_an_app_unlinks_shared_resources_and_deletes_its_own(model: ReadModel):
    """The shared resource loses the deleted app; the app's own resource is gone."""
    shared = await model.resource(SHARED)
    assert shared is not None and shared["apps"] == [ALPHA]
    assert await model.resource(ONLY_GAMMA) is None
    assert ids(await model.resources(PROVIDER)) == [UNLINKED, SHARED]
    assert ids(await model.app_resources(ALPHA)) == [SHARED]
    assert await model.app_resources(GAMMA) == []


async def test_domain_migrations_are_listed(model: ReadModel):
    """A domain migration is listed with its domains."""
    [migration] = await model.domain_migrations()
    assert (migration["id"], migration["domain"]) == (MIGRATION, DOMAIN)


async def test_times_are_flynn_formatted(model: ReadModel):
    """Times are RFC 3339 in UTC, as the objects' own JSON writes them."""
    artifact = await model.artifact(ART1)
    assert artifact is not None and artifact["created_at"] == "2024-01-01T00:00:02Z"


async def test_the_snapshot_holds_every_kind_and_the_position(model: ReadModel):
    """The snapshot has every object, deleted apps and formations apart, and the position."""
    snapshot = await model.snapshot()
    assert snapshot["last_event_id"] == await model.last_event_id() > 0
    assert list(snapshot["apps"]) == sorted([ALPHA, BETA])
    assert list(snapshot["deleted_apps"]) == [GAMMA]
    assert list(snapshot["formations"]) == [f"{ALPHA}:{REL2}"]
    deleted_formations = [f"{ALPHA}:{REL1}", f"{ALPHA}:{GONE}", f"{GAMMA}:{SEED}"]
    assert sorted(snapshot["deleted_formations"]) == sorted(deleted_formations)
    assert list(snapshot["releases"]) == sorted([REL1, REL2, SEED])
    assert list(snapshot["resources"]) == sorted([SHARED, UNLINKED])
    assert snapshot["app_releases"] == {ALPHA: sorted([REL1, REL2]), BETA: [SEED]}
    assert snapshot["jobs"][JOB1]["state"] == "up"
