"""Deployments over HTTP, driven by the service's deployer against a scheduler played here.

`FakeScheduler` follows the log as Flynn's scheduler follows formations: on each `scale` event
of its app it starts or stops jobs and reports their states as `job` events (appended to the
log directly: the jobs endpoint is not what is under test). A release can be made silent (its
jobs never report) or crashing (its jobs crash as they start).
"""

import asyncio
import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from commands.deployments import advance_deployment
from controller import keys
from controller.app import create_app
from domain.clock import now
from domain.codec import decode, encode
from domain.events import FormationScaled, JobStateChanged
from domain.objects import Job
from domain.states import JOB_STATES, JobState
from eventstore.store import EventStore
from projections.deployments import unfinished
from projections.memory import MemoryReadModel
from projections.state import State
from service import deployer
from service.settings import Settings
from tests.controller.api import flynn_error, post
from tests.controller.conftest import AUTH_HEADERS

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)
JSON_ACCEPT = {"Accept": "application/json"}
IN_PROGRESS = "Cannot create deploy, there is already one in progress for this app."
RESTARTS = 10  # per type and reconcile: the scheduler gives up on a crashing release after these


class FakeScheduler:
    """Plays Flynn's scheduler for one app: formations in, job reports out."""

    def __init__(self, store: EventStore, app_id: str) -> None:
        self.store, self.app_id = store, app_id
        self.silent: set[str] = set()
        self.crashing: set[str] = set()
        self.wanted: dict[str, dict[str, int]] = {}
        self.running: dict[tuple[str, str], list[Job]] = defaultdict(list)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "FakeScheduler":
        self.task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()

    async def _follow(self) -> None:
        async for record in self.store.subscribe():
            if record.app_id == self.app_id and record.type == FormationScaled.__name__:
                event = decode(record)
                assert isinstance(event, FormationScaled)
                self.wanted[event.release] = event.processes or {}
                await self.reconcile(event.release)

    async def answer(self, release_id: str) -> None:
        """Stop being silent about a release, and catch up with its formation."""
        self.silent.discard(release_id)
        await self.reconcile(release_id)

    async def reconcile(self, release_id: str) -> None:
        if release_id in self.silent:
            return
        want = self.wanted.get(release_id, {})
        for job_type in sorted({*want, *(t for r, t in self.running if r == release_id)}):
            running = self.running[(release_id, job_type)]
            while len(running) > want.get(job_type, 0):
                await self.report(running.pop(), "down")
            for _ in range(RESTARTS):
                if len(running) >= want.get(job_type, 0):
                    break
                job_id = f"host-{uuid.uuid4()}"
                job = Job(
                    job_id, self.app_id, release_id, JobState.STARTING, now(), now(), type=job_type
                )
                await self.report(job, "starting")
                crashed = release_id in self.crashing
                await self.report(job, "crashed" if crashed else "up")
                if not crashed:
                    running.append(job)

    async def report(self, job: Job, state: str) -> None:
        report = attrs.evolve(job, state=JOB_STATES[state], updated_at=now())
        await self.store.append([encode(JobStateChanged(report))])

    def up(self, release_id: str) -> int:
        return sum(len(jobs) for (r, _), jobs in self.running.items() if r == release_id)


async def released_app(
    client: TestClient,
    store: EventStore,
    strategy: str = "all-at-once",
    timeout: int = 30,
    **processes: int,
) -> tuple[dict, str, str]:
    """An app running an old release at `processes`, and a new release to deploy."""
    app = await post(client, "/apps", {"strategy": strategy, "deploy_timeout": timeout})
    artifact = await post(
        client, "/artifacts", {"type": "docker", "uri": "https://example.com/img"}
    )
    kinds = {"web": {"cmd": ["serve"]}, "worker": {"cmd": ["work"]}}
    old, new = [
        (await post(client, "/releases", {"artifact": artifact["id"], "processes": kinds}))["id"]
        for _ in range(2)
    ]
    response = await client.put(f"/apps/{app['id']}/release", json={"id": old})
    assert response.status == 200
    if processes:
        await store.append([encode(FormationScaled(app["id"], old, dict(processes)))])
    return app, old, new


def state_of(client: TestClient) -> State:
    model: MemoryReadModel = client.app[keys.READ_MODEL]
    return model.state


async def eventually(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def deploy(client: TestClient, app: dict, release_id: str) -> dict:
    answer: dict = await post(client, f"/apps/{app['id']}/deploy", {"id": release_id})
    return answer


async def finished(client: TestClient, deployment_id: str, timeout: float = 10) -> dict:
    """The deployment once complete or failed (the test fails if it stays running)."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"/deployments/{deployment_id}")
            body = await response.json() if response.status == 200 else {}  # 404: not folded yet
            if body.get("status") in ("complete", "failed"):
                return body
            await asyncio.sleep(0.02)


async def story(client: TestClient, app: dict, old: str, new: str) -> list[tuple[str, ...]]:
    """The app's deployment and scale events, oldest first, releases named old/new."""
    query = {"app_id": app["id"], "object_types": "deployment,scale"}
    response = await client.get("/events", params=query, headers=JSON_ACCEPT)
    names = {old: "old", new: "new"}
    told: list[tuple[str, ...]] = []
    for event in reversed(await response.json()):
        data, release = event["data"], names[event["data"]["release"]]
        if event["object_type"] == "scale":
            told.append(("scale", release, json.dumps(data["processes"], separators=(",", ":"))))
        else:
            told.append(
                (data["status"], release, data.get("job_type", ""), data.get("job_state", ""))
            )
    return told


def formation(client: TestClient, app: dict, release_id: str) -> dict[str, int] | None:
    found = state_of(client).formation(app["id"], release_id)
    return None if found is None else found.processes


def error_of(client: TestClient, deployment_id: str) -> str:
    return state_of(client).deployments[deployment_id].error


# -- create, get, list ----------------------------------------------------------------


async def test_deploy_answers_a_pending_deployment_shaped_like_flynns(client: TestClient, store):
    """A deploy of a running app is 200 pending, with Flynn's keys; get and list find it."""
    app, old, new = await released_app(client, store, web=1)
    async with FakeScheduler(store, app["id"]) as scheduler:
        scheduler.silent.add(new)
        created = await deploy(client, app, new)
        recorded = json.loads(RECORDED["deployment_create"]["response"]["body"])
        assert set(created) == set(recorded)
        releases = (created["old_release"], created["new_release"])
        assert created["status"] == "pending" and releases == (old, new)
        assert (created["processes"], created["strategy"], created["deploy_timeout"]) == (
            {"web": 1},
            "all-at-once",
            30,
        )
        got = await (await client.get(f"/deployments/{created['id']}")).json()
        assert got["id"] == created["id"] and got["status"] in ("pending", "running")
        listed = await (await client.get(f"/apps/{app['name']}/deployments")).json()
        assert [d["id"] for d in listed] == [created["id"]]


async def test_a_second_deploy_while_one_runs_is_refused(client: TestClient, store):
    """One deployment in flight per app: the second is Flynn's 400 validation_error."""
    app, _, new = await released_app(client, store, web=1)
    async with FakeScheduler(store, app["id"]) as scheduler:
        scheduler.silent.add(new)
        await deploy(client, app, new)
        refused = await post(client, f"/apps/{app['id']}/deploy", {"id": new}, status=400)
        assert refused == flynn_error("validation_error", IN_PROGRESS)


async def test_deploy_of_an_unknown_release_is_a_validation_error(client: TestClient, store):
    """An unknown release id is 400 `could not find release with ID <id>`."""
    app, _, _ = await released_app(client, store)
    missing = str(uuid.uuid4())
    refused = await post(client, f"/apps/{app['id']}/deploy", {"id": missing}, status=400)
    assert refused["message"] == f"could not find release with ID {missing}"


@pytest.mark.parametrize("ref", [str(uuid.uuid4()), "not-a-uuid"])
async def test_unknown_or_malformed_deployment_id_is_a_bare_404(client: TestClient, ref: str):
    """GET /deployments/:id of nothing, or of a malformed id, is a 404 with an empty body."""
    response = await client.get(f"/deployments/{ref}")
    assert response.status == 404 and await response.read() == b""


@pytest.mark.parametrize("case", ["first deploy", "same release", "scaled to zero"])
async def test_deploy_with_nothing_to_move_completes_at_once(client: TestClient, store, case: str):
    """No release yet, the running release, or zero counts: complete with the release set."""
    counts = {"web": 0} if case == "scaled to zero" else {}
    app, old, new = await released_app(client, store, "all-at-once", 30, **counts)
    if case == "first deploy":
        app = await post(client, "/apps", {})
    target = old if case == "same release" else new
    done = await deploy(client, app, target)
    assert done["status"] == "complete" and "finished_at" in done
    assert (await (await client.get(f"/apps/{app['id']}")).json())["release"] == target
    query = {"app_id": app["id"], "count": "2"}
    events = await (await client.get("/events", params=query, headers=JSON_ACCEPT)).json()
    assert [e["object_type"] for e in events] == ["deployment", "app_release"]
    assert events[0]["id"] == events[1]["id"] + 1  # one append
    assert events[0]["data"]["status"] == "complete"


async def test_deployments_are_listed_newest_first(client: TestClient, store):
    """GET /apps/:app/deployments lists the app's deployments, the newest first."""
    app, old, new = await released_app(client, store)
    ids = [(await deploy(client, app, release))["id"] for release in (old, new, old)]
    listed = await (await client.get(f"/apps/{app['id']}/deployments")).json()
    assert [d["id"] for d in listed] == ids[::-1]


# -- the deployer ---------------------------------------------------------------------


async def test_all_at_once_deployment_completes_with_the_scheduler(client: TestClient, store):
    """all-at-once: every new job up, then the old release scaled to zero; complete."""
    app, old, new = await released_app(client, store, web=2)
    async with FakeScheduler(store, app["id"]) as scheduler:
        await eventually(lambda: scheduler.up(old) == 2)
        created = await deploy(client, app, new)
        assert (await finished(client, created["id"]))["status"] == "complete"
    assert await story(client, app, old, new) == [
        ("scale", "old", '{"web":2}'), ("pending", "new", "", ""),
        ("running", "new", "web", "starting"), ("running", "new", "web", "starting"),
        ("scale", "new", '{"web":2}'),
        ("running", "new", "web", "up"), ("running", "new", "web", "up"),
        ("running", "old", "web", "stopping"), ("running", "old", "web", "stopping"),
        ("scale", "old", '{"web":0}'),
        ("running", "old", "web", "down"), ("running", "old", "web", "down"),
        ("complete", "new", "", ""),
    ]  # fmt: skip
    assert formation(client, app, new) == {"web": 2} and formation(client, app, old) == {"web": 0}
    assert state_of(client).apps[app["id"]].release_id == new


async def test_a_deployer_that_fails_unforeseen_is_started_again_and_completes(
    client: TestClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
):
    """An error the deployer did not foresee outside any one deployment's step (a bug) is
    reported in the status and the deployer is started again: the deployment completes
    instead of waiting for a restart of the service."""
    find = unfinished
    failed: list[object] = []

    def fails_once(state: State) -> Any:
        if not failed and state.deployment_progress:
            failed.append(state)
            raise RuntimeError("unforeseen")
        return find(state)

    monkeypatch.setattr("service.deployer.unfinished", fails_once)
    app, old, new = await released_app(client, store, web=1)
    async with FakeScheduler(store, app["id"]) as scheduler:
        await eventually(lambda: scheduler.up(old) == 1)
        created = await deploy(client, app, new)
        assert (await finished(client, created["id"]))["status"] == "complete"
    assert failed
    problem = client.app[keys.HEALTH][deployer.HEALTH_NAME]
    assert problem.startswith("failed: RuntimeError('unforeseen'); starting again in")


async def test_a_deployment_the_deployer_cannot_decide_fails_alone(
    client: TestClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
):
    """A deployment whose next step the deployer cannot decide (an error it did not foresee)
    fails, saying why, and holds up neither another app's deployment nor its own app's next
    one (Flynn #942: "there is already one in progress" for ever)."""
    broken_app, broken_old, broken_new = await released_app(client, store, web=1)
    app, old, new = await released_app(client, store, web=1)
    broken = [True]

    def cannot_decide_one(state: State, command: Any) -> Any:
        if broken[0] and state.deployments[command.deployment_id].app_id == broken_app["id"]:
            raise RuntimeError("no step for this one")
        return advance_deployment(state, command)

    monkeypatch.setattr("service.deployer.advance_deployment", cannot_decide_one)
    async with (
        FakeScheduler(store, app["id"]) as scheduler,
        FakeScheduler(store, broken_app["id"]) as other,
    ):
        await eventually(lambda: scheduler.up(old) == 1 and other.up(broken_old) == 1)
        failing = await deploy(client, broken_app, broken_new)
        working = await deploy(client, app, new)
        assert (await finished(client, failing["id"]))["status"] == "failed"
        error = error_of(client, failing["id"])
        assert "could not decide its next step (RuntimeError: no step for this one)" in error
        assert (await finished(client, working["id"]))["status"] == "complete"
        broken[0] = False
        again = await deploy(client, broken_app, broken_new)
        assert (await finished(client, again["id"]))["status"] == "complete"


async def test_one_by_one_deployment_completes_with_the_scheduler(client: TestClient, store):
    """one-by-one: one new job up, one old job down, per type in order; complete."""
    app, old, new = await released_app(client, store, "one-by-one", web=2, worker=1)
    async with FakeScheduler(store, app["id"]) as scheduler:
        await eventually(lambda: scheduler.up(old) == 3)
        created = await deploy(client, app, new)
        assert (await finished(client, created["id"]))["status"] == "complete"
    steps = [s for s in await story(client, app, old, new) if s[0] == "running"]

    def one(t: str) -> list[tuple[str, str, str, str]]:
        return [
            ("running", "new", t, "starting"), ("running", "new", t, "up"),
            ("running", "old", t, "stopping"), ("running", "old", t, "down"),
        ]  # fmt: skip

    assert steps == [*one("web"), *one("web"), *one("worker")]
    assert formation(client, app, new) == {"web": 2, "worker": 1}
    assert formation(client, app, old) == {"web": 0, "worker": 0}
    assert state_of(client).apps[app["id"]].release_id == new


async def test_crashing_new_jobs_fail_the_deployment_and_roll_back(client: TestClient, store):
    """New jobs that crash as they start: failed, old formation kept, new one removed."""
    app, old, new = await released_app(client, store, web=2)
    async with FakeScheduler(store, app["id"]) as scheduler:
        scheduler.crashing.add(new)
        await eventually(lambda: scheduler.up(old) == 2)
        created = await deploy(client, app, new)
        assert (await finished(client, created["id"]))["status"] == "failed"
    assert "went down while starting" in error_of(client, created["id"])
    assert "rolled back" in error_of(client, created["id"])
    assert formation(client, app, old) == {"web": 2} and formation(client, app, new) is None
    assert state_of(client).apps[app["id"]].release_id == old


async def test_unanswered_deployment_fails_after_deploy_timeout_and_rolls_back(
    client: TestClient, store: EventStore
):
    """Nothing answers for the new release: failed after deploy_timeout (1 s), rolled back."""
    app, old, new = await released_app(client, store, timeout=1, web=2)
    async with FakeScheduler(store, app["id"]) as scheduler:
        scheduler.silent.add(new)
        created = await deploy(client, app, new)
        assert (await finished(client, created["id"]))["status"] == "failed"
    assert "timed out waiting for web jobs of the new release to come up (waited 1 seconds)" in (
        error_of(client, created["id"])
    )
    told = await story(client, app, old, new)
    ends = [("scale", "new", '{"web":2}'), ("scale", "new", "null"), ("failed", "new", "", "")]
    assert told[-3:] == ends
    assert formation(client, app, old) == {"web": 2} and formation(client, app, new) is None
    assert state_of(client).apps[app["id"]].release_id == old


async def test_deployment_of_a_deleted_app_ends_failed(client: TestClient, store):
    """Deleting an app mid-deployment fails the deployment instead of leaving it running."""
    app, _, new = await released_app(client, store, web=1)
    async with FakeScheduler(store, app["id"]) as scheduler:
        scheduler.silent.add(new)
        created = await deploy(client, app, new)
        assert (await client.delete(f"/apps/{app['id']}")).status == 200
        assert (await finished(client, created["id"]))["status"] == "failed"
    assert error_of(client, created["id"]) == "the app was deleted during the deployment"


async def test_unsupported_strategy_fails_without_changing_anything(client: TestClient, store):
    """A strategy Evenflow does not run (postgres) fails at once; formations are untouched."""
    app, old, new = await released_app(client, store, "postgres", web=1)
    created = await deploy(client, app, new)
    assert (await finished(client, created["id"]))["status"] == "failed"
    assert 'strategy "postgres" is not supported' in error_of(client, created["id"])
    assert formation(client, app, old) == {"web": 1} and formation(client, app, new) is None


# -- restarts and several deployers ---------------------------------------------------


async def start(aiohttp_client: AiohttpClient, settings: Settings, store: EventStore) -> TestClient:
    return await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)


@pytest.mark.parametrize("answer_later", [True, False])
async def test_a_restarted_service_resumes_or_fails_a_deployment(
    store: EventStore, aiohttp_client: Any, settings: Settings, answer_later: bool
):
    """Stopped mid-deployment, a new instance on the same log completes it, or fails it on time."""
    first = await start(aiohttp_client, settings, store)
    app, old, new = await released_app(first, store, timeout=1, web=2)
    async with FakeScheduler(store, app["id"]) as scheduler:
        scheduler.silent.add(new)
        await eventually(lambda: scheduler.up(old) == 2)
        created = await deploy(first, app, new)
        await eventually(lambda: formation(first, app, new) == {"web": 2})  # its first step
        await first.close()
        if answer_later:
            await scheduler.answer(new)  # the new jobs come up while no deployer runs
        second = await start(aiohttp_client, settings, store)
        done = await finished(second, created["id"])
    assert done["status"] == ("complete" if answer_later else "failed")
    expected_release = new if answer_later else old
    assert state_of(second).apps[app["id"]].release_id == expected_release
    assert formation(second, app, old) == ({"web": 0} if answer_later else {"web": 2})


async def test_two_deployers_on_one_log_take_each_step_once(
    store: EventStore, aiohttp_client: Any, settings: Settings
):
    """Two service instances on the same log both run the deployer: no step is taken twice."""
    first = await start(aiohttp_client, settings, store)
    second = await start(aiohttp_client, settings, store)
    app, old, new = await released_app(first, store, web=2)
    async with FakeScheduler(store, app["id"]) as scheduler:
        await eventually(lambda: scheduler.up(old) == 2)
        created = await deploy(first, app, new)
        assert (await finished(second, created["id"]))["status"] == "complete"
    steps = [s for s in await story(first, app, old, new) if s[0] not in ("scale", "pending")]
    assert steps == [
        ("running", "new", "web", "starting"), ("running", "new", "web", "starting"),
        ("running", "new", "web", "up"), ("running", "new", "web", "up"),
        ("running", "old", "web", "stopping"), ("running", "old", "web", "stopping"),
        ("running", "old", "web", "down"), ("running", "old", "web", "down"),
        ("complete", "new", "", ""),
    ]  # fmt: skip
