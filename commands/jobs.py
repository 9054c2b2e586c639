"""Job commands and their deciders: run a one-off job, record a state report, kill a job."""

from __future__ import annotations

from datetime import datetime

import attrs

from commands.apps import require_app
from commands.errors import NotFoundError, ValidationError
from commands.types import handler, handlers
from domain.events import Event, JobStateChanged
from domain.ids import canonical_uuid
from domain.objects import JSON, Job, Release
from domain.states import JOB_STATE_RANK, JOB_STATES, JobState
from host.inputs import JOB_ID_SHAPE, parse_job_id
from projections.apps import find_app_or_deleted
from projections.jobs import find_job
from projections.state import State


def _release_ref(value: object) -> str:
    text = str(value or "")
    return canonical_uuid(text.lower()) or text


@attrs.frozen
class RunJob:
    """Start a one-off job: recorded as `pending` for a scheduler to place and run."""

    app: str
    release_id: str
    job_id: str  # "<host id>-<uuid>", made by the handler
    now: datetime
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    meta: dict[str, str] = attrs.field(factory=dict)
    release_env: bool = False

    @classmethod
    def from_json(cls, doc: JSON, *, app: str, job_id: str, now: datetime) -> RunJob:
        """From a schema-checked NewJob. HEAD's `args`, when given, is the whole command
        (Flynn HEAD: job.Config.Args = newJob.Args), whatever `entrypoint` and `cmd` say: its
        CLI sends all three, `cmd` left out for a command of one word."""
        args = tuple(doc.get("args") or ())
        return cls(
            app=app,
            release_id=_release_ref(doc["release"]),
            job_id=job_id,
            now=now,
            cmd=args[1:] if args else tuple(doc.get("cmd") or ()),
            entrypoint=args[:1] if args else tuple(doc.get("entrypoint") or ()),
            env=doc.get("env") or {},
            meta=doc.get("meta") or {},
            release_env=bool(doc.get("release_env")),
        )


@attrs.frozen
class PutJob:
    """A scheduler's report of a job's state; keyed by the body's id, not the path's."""

    app: str  # id or name, from the path
    job_id: str
    now: datetime
    state: str = ""
    release_id: str | None = None
    type: str = ""
    meta: dict[str, str] = attrs.field(factory=dict)
    exit_status: int | None = None
    host_error: str = ""

    @classmethod
    def from_json(cls, doc: JSON, *, app: str, now: datetime) -> PutJob:
        # Flynn SEED keys on body.id; HEAD on body.uuid (with host_id beside it).
        job_id = doc.get("id") or ""
        if not job_id and doc.get("uuid"):
            job_id = f"{doc['host_id']}-{doc['uuid']}" if doc.get("host_id") else doc["uuid"]
        return cls(
            app=app,
            job_id=job_id,
            now=now,
            state=doc.get("state") or "",
            release_id=_release_ref(doc["release"]) if doc.get("release") else None,
            type=doc.get("type") or "",
            meta=doc.get("meta") or {},
            exit_status=doc.get("exit_status"),
            host_error=doc.get("host_error") or "",
        )


@attrs.frozen
class KillJob:
    app: str
    job: str  # full id or uuid
    now: datetime


def _runnable_release(state: State, release_id: str) -> Release:
    release = state.releases.get(release_id)
    if release is None:
        raise NotFoundError(f"release {release_id!r} not found")
    if not release.artifact_id:
        # Flynn HEAD answers `release.ArtifactIDs cannot be empty`; SEED fails with a 500.
        raise ValidationError("release", "has no artifact to run")
    return release


def run_job(state: State, cmd: RunJob) -> list[Event]:
    app = require_app(state, cmd.app)
    release = _runnable_release(state, cmd.release_id)
    # Flynn: controller/jobs.go RunJob; later keys override earlier ones.
    env = {
        "FLYNN_APP_ID": app.id,
        "FLYNN_RELEASE_ID": release.id,
        "FLYNN_PROCESS_TYPE": "",
        "FLYNN_JOB_ID": cmd.job_id,
    }
    if cmd.release_env:
        env |= release.env
    env |= cmd.env
    meta = cmd.meta | {
        "flynn-controller.app": app.id,
        "flynn-controller.app_name": app.name,
        "flynn-controller.release": release.id,
    }
    job = Job(
        id=cmd.job_id,
        app_id=app.id,
        release_id=release.id,
        state=JobState.PENDING,
        created_at=cmd.now,
        updated_at=cmd.now,
        meta=meta,
        cmd=cmd.cmd,
        entrypoint=cmd.entrypoint,
        env=env,
    )
    return [JobStateChanged(job)]


def report_app(state: State, ref: str) -> str:
    """The path's app id; a deleted app too, so that its jobs can still be reported down."""
    app = find_app_or_deleted(state, ref)
    if app is None:
        raise NotFoundError(f"app {ref!r} not found")
    return app.id


def reported_job(state: State, cmd: PutJob, app_id: str) -> Job | None:
    """The job a report is about. Flynn SEED upserts on the job id alone, so an existing job
    keeps its app; a bare uuid (HEAD) names one of the path app's jobs."""
    return state.jobs.get(cmd.job_id) or find_job(state, app_id, cmd.job_id)


def put_job(state: State, cmd: PutJob) -> list[Event]:
    app_id = report_app(state, cmd.app)
    if not cmd.job_id:
        raise ValidationError("id", "must be set")
    reported = JOB_STATES.get(cmd.state)
    if reported is None:
        raise ValidationError("state", f"must be one of {', '.join(JobState)}")
    current = reported_job(state, cmd, app_id)
    release_id = cmd.release_id or (current.release_id if current else None)
    # A deleted release too: its jobs still report (Flynn's foreign key allows it).
    if release_id is None or (
        release_id not in state.releases and release_id not in state.deleted_releases
    ):
        raise ValidationError("release", f"could not find release with ID {release_id or ''}")
    if current is None:
        if app_id not in state.apps:
            raise NotFoundError(f"app {cmd.app!r} not found")
        # A new job may be run by a host, which names its directory after the id: only
        # Flynn's shape (pkg/cluster ExtractHostID) with a uuid, nothing a path could hide in.
        if parse_job_id(cmd.job_id) is None:
            raise ValidationError("id", f"must be {JOB_ID_SHAPE}")
        return [JobStateChanged(_new_job(cmd, reported, app_id, release_id))]
    if JOB_STATE_RANK[reported] < JOB_STATE_RANK[current.state]:
        # Flynn SEED: a trigger refused backwards moves (dropped on 2015-12-19).
        raise ValidationError(
            "state", f"invalid job state transition: {current.state} -> {cmd.state}"
        )
    if reported == current.state:
        return []  # at most one event per (job, state): Flynn's unique_id "<id>|<state>"
    # Flynn SEED: jobUpdateQuery changes only these.
    changed = attrs.evolve(
        current,
        state=reported,
        exit_status=cmd.exit_status,
        host_error=cmd.host_error,
        updated_at=cmd.now,
    )
    return [JobStateChanged(changed)]


def _new_job(cmd: PutJob, state: JobState, app_id: str, release_id: str) -> Job:
    return Job(
        id=cmd.job_id,
        app_id=app_id,
        release_id=release_id,
        state=state,
        created_at=cmd.now,
        updated_at=cmd.now,
        type=cmd.type,
        meta=cmd.meta,
        exit_status=cmd.exit_status,
        host_error=cmd.host_error,
    )


#: Where a kill moves a job, by its state now.
_KILLED = {
    JobState.PENDING: JobState.DOWN,
    JobState.STARTING: JobState.STOPPING,
    JobState.UP: JobState.STOPPING,
}


def kill_job(state: State, cmd: KillJob) -> list[Event]:
    app = require_app(state, cmd.app)
    job = find_job(state, app.id, cmd.job)
    if job is None:
        raise NotFoundError(f"job {cmd.job!r} not found")
    # A job no host runs yet just goes down; a running one is marked for the scheduler to
    # stop, which then reports it down. One already stopping or stopped stays as it is.
    target = _KILLED.get(job.state)
    if target is None:
        return []
    return [JobStateChanged(attrs.evolve(job, state=target, updated_at=cmd.now))]


HANDLERS = handlers(
    handler(RunJob, run_job),
    handler(PutJob, put_job),
    handler(KillJob, kill_job),
)
