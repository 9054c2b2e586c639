"""Deployment deciders: given a history, create/advance yield events or an error (pure, no I/O).

`play` drives a deployment the way the deployer and a scheduler would, but in one thread:
decide a step, fold it, let the scheduler make the jobs match the formations, repeat.
"""

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from commands.deployments import (
    MAX_NEW_JOB_FAILURES,
    AdvanceDeployment,
    CreateDeployment,
    FailDeployment,
    advance_deployment,
    create_deployment,
    fail_deployment,
)
from commands.errors import ValidationError
from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    DeploymentCreated,
    DeploymentStatusChanged,
    Event,
    FormationScaled,
    JobStateChanged,
    ReleaseCreated,
)
from domain.objects import App, Job, Release
from domain.states import JOB_STATES, JobState
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APP = "00000000-0000-4000-8000-00000000a001"
OLD, NEW = "00000000-0000-4000-8000-0000000000e1", "00000000-0000-4000-8000-0000000000e2"
DEP = "00000000-0000-4000-8000-0000000000d1"
TIMEOUT = 30
IN_PROGRESS = "Cannot create deploy, there is already one in progress for this app."
_job_numbers = itertools.count()

Fate = Callable[[str], str | None]  # release -> what its new jobs reach ("up", ...), None: silence


def release(release_id: str, *types: str) -> Release:
    return Release(release_id, T0, processes={t: {"cmd": ["run", t]} for t in types})


def job(release_id: str, job_type: str, state: str) -> Job:
    job_id = f"host-{next(_job_numbers):08d}"
    return Job(job_id, APP, release_id, JOB_STATES[state], T0, T0, type=job_type)


def running_app(strategy: str = "all-at-once", **processes: int) -> State:
    """An app on OLD with `processes` up (the scheduler has answered), and NEW released."""
    state = State()
    app = App(APP, "web-app", T0, T0, strategy=strategy, deploy_timeout=TIMEOUT)
    history: list[Event] = [
        AppCreated(app),
        ReleaseCreated(release(OLD, "web", "worker")),
        ReleaseCreated(release(NEW, "web", "worker")),
        AppReleaseSet(APP, release(OLD, "web", "worker")),
        FormationScaled(APP, OLD, dict(processes)),
    ]
    history += [JobStateChanged(job(OLD, t, "up")) for t, n in processes.items() for _ in range(n)]
    for event in history:
        apply(state, event, T0)
    return state


def deploy(state: State, at: datetime = T0) -> list[Event]:
    events = create_deployment(state, CreateDeployment(DEP, APP, NEW, at))
    fold(state, events, at)
    return events


def fold(state: State, events: list[Event], at: datetime) -> None:
    for event in events:
        apply(state, event, at)


def advance(state: State, at: datetime) -> list[Event]:
    events = advance_deployment(state, AdvanceDeployment(DEP, at))
    fold(state, events, at)
    return events


def schedule(state: State, at: datetime, fate: Fate = lambda release_id: "up") -> None:
    """The scheduler: start or stop jobs until each formation's counts are up."""
    reports: list[Event] = []
    for release_id in sorted(state.app_formations.get(APP, {})):
        formation = state.formations[(APP, release_id)]
        want = formation.processes or {}
        up = [j for j in state.jobs.values() if j.release_id == release_id and j.state == "up"]
        for job_type in sorted(set(want) | {j.type for j in up}):
            running = [j for j in up if j.type == job_type]
            for extra in running[want.get(job_type, 0) :]:
                reports.append(JobStateChanged(attrs.evolve(extra, state=JobState.DOWN)))
            reached = fate(release_id)
            for _ in range(want.get(job_type, 0) - len(running)):
                if reached is not None:
                    reports.append(JobStateChanged(job(release_id, job_type, reached)))
    fold(state, reports, at)


def play(state: State, fate: Fate = lambda release_id: "up", rounds: int = 40) -> list[Event]:
    """Step and schedule, a millisecond apart, until the deployment ends; all it decided."""
    decided: list[Event] = []
    at = T0
    for _ in range(rounds):
        at += timedelta(milliseconds=1)
        decided += advance(state, at)
        if state.deployments[DEP].finished:
            break
        schedule(state, at, fate)
    return decided


def narrative(events: list[Event]) -> list[tuple[str, ...]]:
    """The deployment events as (status, release, job_type, job_state), scale events as scale."""
    story: list[tuple[str, ...]] = []
    for e in events:
        if isinstance(e, DeploymentStatusChanged):
            story.append((e.status, e.release, e.job_type, e.job_state))
        elif isinstance(e, FormationScaled):
            story.append(("scale", e.release, str(e.processes)))
    return story


def test_deploy_of_an_unknown_release_is_refused():
    """An unknown release is Flynn's validation error, and nothing is decided."""
    state = running_app(web=1)
    with pytest.raises(ValidationError, match="could not find release with ID nope"):
        create_deployment(state, CreateDeployment(DEP, APP, "nope", T0))


def test_only_one_deployment_per_app_may_be_in_flight():
    """A second deploy while one runs is refused with Flynn's message."""
    state = running_app(web=1)
    deploy(state)
    with pytest.raises(ValidationError) as refused:
        create_deployment(state, CreateDeployment("deploy-2", APP, NEW, T0))
    assert refused.value.message == IN_PROGRESS


def test_deploy_of_a_running_app_is_pending_with_the_apps_settings():
    """The deployment copies the old counts, the strategy and the timeout, and waits."""
    (created,) = deploy(running_app("one-by-one", web=2, worker=1))
    assert isinstance(created, DeploymentCreated)
    d = created.deployment
    assert (d.status, d.old_release_id, d.new_release_id) == ("pending", OLD, NEW)
    assert (d.processes, d.strategy, d.deploy_timeout, d.finished_at) == (
        {"web": 2, "worker": 1},
        "one-by-one",
        TIMEOUT,
        None,
    )


@pytest.mark.parametrize("case", ["first deploy", "scaled to zero", "same release"])
def test_deploy_completes_at_once_when_nothing_has_to_move(case: str):
    """Nothing running, or the release already running: release set and complete, one append."""
    state = running_app(web=0) if case == "scaled to zero" else running_app(web=2)
    if case == "first deploy":
        state.apps[APP] = attrs.evolve(state.apps[APP], release_id=None)
    target = OLD if case == "same release" else NEW
    events = create_deployment(state, CreateDeployment(DEP, APP, target, T0))
    assert [type(e) for e in events] == [AppReleaseSet, DeploymentCreated]
    created = events[1]
    assert isinstance(created, DeploymentCreated)
    done = created.deployment
    assert (done.status, done.finished_at, done.new_release_id) == ("complete", T0, target)
    fold(state, events, T0)
    assert state.apps[APP].release_id == target and APP not in state.deploying


def test_a_step_already_taken_decides_nothing():
    """Asked twice, the first step is decided once: the second decision sees it in State."""
    state = running_app(web=2)
    deploy(state)
    first = advance(state, T0)
    assert narrative(first) == [
        ("running", NEW, "web", "starting"), ("running", NEW, "web", "starting"),
        ("scale", NEW, "{'web': 2}"),
    ]  # fmt: skip
    assert advance(state, T0) == []


def test_all_at_once_starts_every_new_job_then_stops_the_old_ones():
    """all-at-once: new formation at the old counts, ups, old formation to zero, downs, done."""
    state = running_app(web=2, worker=1)
    deploy(state)
    story = narrative(play(state))
    assert story == [
        ("running", NEW, "web", "starting"), ("running", NEW, "web", "starting"),
        ("running", NEW, "worker", "starting"), ("scale", NEW, "{'web': 2, 'worker': 1}"),
        ("running", NEW, "web", "up"), ("running", NEW, "web", "up"),
        ("running", NEW, "worker", "up"),
        ("running", OLD, "web", "stopping"), ("running", OLD, "web", "stopping"),
        ("running", OLD, "worker", "stopping"), ("scale", OLD, "{'web': 0, 'worker': 0}"),
        ("running", OLD, "web", "down"), ("running", OLD, "web", "down"),
        ("running", OLD, "worker", "down"),
        ("complete", NEW, "", ""),
    ]  # fmt: skip
    assert state.apps[APP].release_id == NEW
    assert state.formation(APP, NEW).processes == {"web": 2, "worker": 1}  # type: ignore[union-attr]


def test_one_by_one_moves_one_job_at_a_time_type_by_type():
    """one-by-one: per sorted type, one new job up then one old job down, then done."""
    state = running_app("one-by-one", web=2, worker=1)
    deploy(state)
    story = [s for s in narrative(play(state)) if s[0] != "scale"]

    def one_step(t: str) -> list[tuple[str, str, str, str]]:
        return [
            ("running", NEW, t, "starting"), ("running", NEW, t, "up"),
            ("running", OLD, t, "stopping"), ("running", OLD, t, "down"),
        ]  # fmt: skip

    done = ("complete", NEW, "", "")
    assert story == [*one_step("web"), *one_step("web"), *one_step("worker"), done]
    assert state.formation(APP, OLD).processes == {"web": 0, "worker": 0}  # type: ignore[union-attr]
    assert state.apps[APP].release_id == NEW


def test_a_wait_times_out_after_deploy_timeout_and_rolls_back():
    """No answer: nothing before deploy_timeout, then failed with the new formation removed."""
    state = running_app(web=2)
    deploy(state)
    advance(state, T0)
    assert advance(state, T0 + timedelta(seconds=TIMEOUT - 1)) == []
    failed = advance(state, T0 + timedelta(seconds=TIMEOUT))
    assert narrative(failed)[:-1] == [("scale", NEW, "None")]
    last = failed[-1]
    assert isinstance(last, DeploymentStatusChanged) and last.status == "failed"
    assert "timed out waiting for web jobs of the new release" in last.error
    assert "rolled back" in last.error
    assert state.formation(APP, OLD).processes == {"web": 2}  # type: ignore[union-attr]
    assert state.apps[APP].release_id == OLD and APP not in state.deploying


def test_rollback_restores_the_counts_the_deployment_started_from():
    """Flynn #2807: a rollback after the old formation was scaled down restores the old counts."""
    state = running_app("one-by-one", web=2)
    deploy(state)
    advance(state, T0)  # one new job asked for
    fold(state, [JobStateChanged(job(NEW, "web", "up"))], T0)
    advance(state, T0)  # it is up: the old formation is asked down to one, whose job never stops
    assert state.formation(APP, OLD).processes == {"web": 1}  # type: ignore[union-attr]
    failed = advance(state, T0 + timedelta(seconds=TIMEOUT))
    assert narrative(failed)[:2] == [("scale", OLD, "{'web': 2}"), ("scale", NEW, "None")]
    assert state.formation(APP, OLD).processes == {"web": 2}  # type: ignore[union-attr]


def test_timeout_while_stopping_the_old_release_keeps_the_new_one_as_the_apps_release():
    """Flynn #3285: failing once the new jobs run sets the new release and rolls nothing back."""
    state = running_app(web=1)
    deploy(state)
    play(state, fate=lambda r: "up", rounds=1)  # the new job comes up
    advance(state, T0 + timedelta(seconds=1))  # the old formation is scaled to zero
    failed = advance(state, T0 + timedelta(seconds=TIMEOUT + 2))  # its job never stops
    assert [type(e) for e in failed] == [AppReleaseSet, DeploymentStatusChanged]
    assert "no rollback" in failed[-1].error  # type: ignore[union-attr]
    assert state.apps[APP].release_id == NEW
    assert state.formation(APP, NEW).processes == {"web": 1}  # type: ignore[union-attr]


def test_too_many_new_jobs_going_down_fails_and_rolls_back():
    """New jobs that crash as they start fail the deployment once more than a few did."""
    state = running_app(web=2)
    deploy(state)
    decided = play(state, fate=lambda r: "crashed" if r == NEW else "up")
    last = decided[-1]
    assert isinstance(last, DeploymentStatusChanged) and last.status == "failed"
    assert f"{MAX_NEW_JOB_FAILURES + 1} jobs of the new release went down" in last.error
    assert "rolled back" in last.error and state.formation(APP, NEW) is None
    assert state.formation(APP, OLD).processes == {"web": 2}  # type: ignore[union-attr]


def test_a_job_report_is_echoed_once():
    """Each new job coming up is told once as a `running up` event, however often one asks."""
    state = running_app(web=1)
    deploy(state)
    advance(state, T0)
    fold(state, [JobStateChanged(job(NEW, "web", "up"))], T0)
    echoed = advance(state, T0)
    assert narrative(echoed)[0] == ("running", NEW, "web", "up")
    assert ("running", NEW, "web", "up") not in narrative(advance(state, T0))


def test_deployment_of_a_deleted_app_fails():
    """An app deleted mid-deployment ends its deployment failed, without touching formations."""
    state = running_app(web=1)
    deploy(state)
    fold(state, [AppDeleted(APP)], T0)
    (failed,) = advance(state, T0)
    assert isinstance(failed, DeploymentStatusChanged) and failed.status == "failed"
    assert failed.error == "the app was deleted during the deployment"
    assert advance(state, T0) == []


def test_an_unsupported_strategy_fails_cleanly():
    """A strategy Evenflow does not run fails the deployment at once and changes nothing."""
    state = running_app("postgres", web=1)
    deploy(state)
    (failed,) = advance(state, T0)
    assert isinstance(failed, DeploymentStatusChanged) and failed.status == "failed"
    assert failed.error == 'deployment strategy "postgres" is not supported; nothing was changed'
    assert state.formation(APP, NEW) is None and state.apps[APP].release_id == OLD


def test_an_old_job_that_is_stopping_still_counts_until_it_reports_down():
    """The deployment completes only when the old release's jobs are down, not stopping."""
    state = running_app(web=1)
    deploy(state)
    new_job = job(NEW, "web", "up")
    old_job = next(j for j in state.jobs.values() if j.release_id == OLD)
    for _ in range(10):  # take every step the deployment can take on its own
        events = advance_deployment(state, AdvanceDeployment(DEP, T0))
        if not events:
            break
        fold(state, events, T0)
        if state.formation(APP, NEW) and new_job.id not in state.jobs:
            fold(state, [JobStateChanged(new_job)], T0)
    stopping = attrs.evolve(old_job, state=JobState.STOPPING)
    fold(state, [JobStateChanged(stopping)], T0)
    assert not any(
        isinstance(e, DeploymentStatusChanged) and e.status == "complete"
        for e in advance_deployment(state, AdvanceDeployment(DEP, T0))
    )
    fold(state, [JobStateChanged(attrs.evolve(old_job, state=JobState.DOWN))], T0)
    decided = advance_deployment(state, AdvanceDeployment(DEP, T0))
    assert [e.status for e in decided if isinstance(e, DeploymentStatusChanged)][-1] == "complete"


def test_failing_a_deployment_ends_it_once_with_the_error_given():
    """FailDeployment (the deployer's way out of a step it cannot decide) fails a running
    deployment with its error, after which a new deployment of the app may begin; once the
    deployment has ended it decides nothing."""
    state = running_app(web=1)
    deploy(state)
    failure = FailDeployment(DEP, "the deployer could not decide its next step", T0)
    events = fail_deployment(state, failure)
    assert [(e.status, e.error) for e in events if isinstance(e, DeploymentStatusChanged)] == [
        ("failed", "the deployer could not decide its next step")
    ]
    fold(state, events, T0)
    assert fail_deployment(state, failure) == []
    assert fail_deployment(state, attrs.evolve(failure, deployment_id=OLD)) == []
    assert create_deployment(state, CreateDeployment(NEW, APP, NEW, T0))
