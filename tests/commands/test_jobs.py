"""Job deciders: given a history, running, reporting or killing a job yields `job` events or a
domain error (pure, no I/O)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.errors import NotFoundError, ValidationError
from commands.jobs import HANDLERS, KillJob, PutJob, RunJob, kill_job, put_job, run_job
from domain.events import (
    AppCreated,
    AppDeleted,
    ArtifactCreated,
    Event,
    JobStateChanged,
    ReleaseCreated,
)
from domain.objects import App, Artifact, Release
from domain.states import JobState
from projections.jobs import active_jobs, find_job
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APP = "00000000-0000-4000-8000-00000000000a"
UUID = "00000000-0000-4000-8000-000000000001"
JOB = f"h1-{UUID}"
#: Job states in the order a job moves through them.
JOB_STATES = list(JobState)


def given_history(*events: Event) -> State:
    """An app "web", a release "r1" with an artifact and env, and a release "bare" without."""
    state = State()
    history: list[Event] = [
        AppCreated(App(APP, "web", T0, T0)),
        ArtifactCreated(Artifact("art", "docker", "https://e/x", T0)),
        ReleaseCreated(Release("r1", T0, artifact_id="art", env={"A": "release", "B": "release"})),
        ReleaseCreated(Release("bare", T0)),
        *events,
    ]
    for event in history:
        apply(state, event, T0)
    return state


def decided(state: State, command: RunJob | PutJob | KillJob) -> list[Event]:
    """Decide, then fold the events as the dispatcher does."""
    events = HANDLERS[type(command)](state, command)
    for event in events:
        apply(state, event, command.now)
    return events


def report(state: str, job_id: str = JOB, at: datetime = T0, **kw: object) -> PutJob:
    return PutJob(app="web", job_id=job_id, now=at, state=state, **{"release_id": "r1", **kw})  # type: ignore[arg-type]


def test_run_job_records_a_pending_job_with_flynns_env_and_meta():
    """The job is pending, its env is FLYNN_* then release env (if asked) then the request's,
    and its meta names the app and release."""
    state = given_history()
    command = RunJob(
        "web", "r1", JOB, T0, cmd=("ls",), env={"B": "request"}, meta={"m": "1"}, release_env=True
    )
    (event,) = decided(state, command)
    assert isinstance(event, JobStateChanged)
    job = event.job
    assert (job.id, job.app_id, job.release_id, job.state, job.cmd) == (
        JOB,
        APP,
        "r1",
        "pending",
        ("ls",),
    )
    assert list(job.env.items()) == [
        ("FLYNN_APP_ID", APP),
        ("FLYNN_RELEASE_ID", "r1"),
        ("FLYNN_PROCESS_TYPE", ""),
        ("FLYNN_JOB_ID", JOB),
        ("A", "release"),
        ("B", "request"),
    ]
    assert job.meta == {
        "m": "1",
        "flynn-controller.app": APP,
        "flynn-controller.app_name": "web",
        "flynn-controller.release": "r1",
    }
    (event,) = run_job(state, RunJob("web", "r1", "h1-other", T0))
    assert "A" not in event.job.env  # type: ignore[union-attr]


def test_run_job_needs_a_known_release_with_an_artifact():
    """An unknown release is not found; one without an artifact is a 400 on field release."""
    state = given_history()
    with pytest.raises(NotFoundError):
        run_job(state, RunJob("web", "missing", JOB, T0))
    with pytest.raises(ValidationError) as info:
        run_job(state, RunJob("web", "bare", JOB, T0))
    assert info.value.field == "release"
    with pytest.raises(NotFoundError):
        run_job(state, RunJob("nope", "r1", JOB, T0))


def test_put_job_inserts_then_updates_state_exit_status_and_host_error_only():
    """A new job takes the report's fields; later reports change only state, exit status,
    host error and updated_at."""
    state = given_history()
    decided(state, report("starting", type="web", meta={"k": "v"}))
    later = T0 + timedelta(seconds=3)
    (event,) = decided(
        state, report("down", at=later, type="other", meta={}, exit_status=1, host_error="oom")
    )
    job = event.job  # type: ignore[union-attr]
    assert (job.type, job.meta, job.state, job.exit_status, job.host_error) == (
        "web",
        {"k": "v"},
        "down",
        1,
        "oom",
    )
    assert (job.created_at, job.updated_at) == (T0, later)


def test_put_job_refuses_unknown_apps_releases_and_states():
    """Unknown app is not found; unknown release, missing or malformed id or unknown state are
    400s."""
    state = given_history()
    with pytest.raises(NotFoundError):
        put_job(state, PutJob(app="nope", job_id=JOB, now=T0, state="up", release_id="r1"))
    for command, field in (
        (report("up", release_id="missing"), "release"),
        (report("up", job_id=""), "id"),
        (report("asleep"), "state"),
        (report("up", job_id=UUID), "id"),
        (report("up", job_id="../../x"), "id"),
        (report("up", job_id=f"h1-{UUID}/../x"), "id"),
    ):
        with pytest.raises(ValidationError) as info:
            put_job(state, command)
        assert info.value.field == field


def test_a_deleted_apps_existing_jobs_can_still_be_reported():
    """After the app is deleted, a report by app id updates its known jobs but adds none."""
    state = given_history()
    decided(state, report("up"))
    apply(state, AppDeleted(APP), T0)
    assert decided(state, PutJob(app=APP, job_id=JOB, now=T0, state="down"))[0].job.state == "down"  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        put_job(state, PutJob(app=APP, job_id="h1-new", now=T0, state="up", release_id="r1"))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("pending", "down"),
        ("starting", "stopping"),
        ("up", "stopping"),
        ("stopping", None),
        ("down", None),
    ],
)
def test_kill_job_moves_a_job_towards_down(before: str, after: str | None):
    """Kill: pending goes down, running goes stopping, a stopping or stopped job is left alone."""
    state = given_history()
    decided(state, report(before))
    events = decided(state, KillJob("web", UUID, T0))
    assert [e.job.state for e in events] == ([after] if after else [])  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        kill_job(state, KillJob("web", "h1-missing", T0))


reports = st.lists(
    st.tuples(st.sampled_from([JOB, f"h2-{APP}"]), st.sampled_from(JOB_STATES)), max_size=25
)


@given(reports)
def test_state_reports_never_move_a_job_back_and_record_each_state_once(
    sequence: list[tuple[str, JobState]],
):
    """Under any sequence of reports a job's state never goes back, and at most one event is
    recorded per (job, state): each event's unique id is new."""
    state = given_history()
    unique_ids: list[str] = []
    for n, (job_id, job_state) in enumerate(sequence):
        before = state.jobs.get(job_id)
        try:
            events = decided(state, report(job_state, job_id=job_id, at=T0 + timedelta(seconds=n)))
        except ValidationError as exc:
            assert exc.field == "state" and before is not None
            assert JOB_STATES.index(job_state) < JOB_STATES.index(before.state)
            continue
        unique_ids += [e.unique_id for e in events]  # type: ignore[union-attr]
        after = state.jobs[job_id]
        if before is not None:
            assert JOB_STATES.index(after.state) >= JOB_STATES.index(before.state)
            assert (events == []) == (after.state == before.state)
    assert len(unique_ids) == len(set(unique_ids))
    active = {job.id for job in active_jobs(state)}
    assert active == {j.id for j in state.jobs.values() if j.state in JOB_STATES[:4]}
    if JOB in state.jobs:
        assert find_job(state, APP, UUID) == state.jobs[JOB]
