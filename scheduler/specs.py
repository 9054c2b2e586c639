"""What a host runs for a job: its command, environment, artifact, ports and limits.

A formation job runs its process type's `entrypoint` + `cmd` (HEAD's `args` when both are
empty) with env = release env + process env + Flynn's FLYNN_* variables. A one-off job runs
its own `entrypoint` + `cmd` with the env RunJob recorded (FLYNN_*, the release env when asked
for, the request's env). Limits are the process type's resource limits (Flynn's defaults for
one-off jobs). A container image keeps its own entrypoint or cmd where the job gives none;
HEAD's `args` replaces both (Flynn HEAD: job.Config.Args).
"""

from __future__ import annotations

from typing import Any

from commands.releases import DEFAULT_RESOURCES
from domain.objects import Artifact, Job
from host.interface import JobSpec
from projections.releases import artifact, release
from projections.state import State
from scheduler.desired import Slot


class SpecError(Exception):
    """The job cannot be described to a host (its release or artifact is gone)."""


def job_meta(state: State, slot: Slot) -> dict[str, str]:
    """Flynn's controller metadata of a formation job."""
    app_id, release_id, process_type = slot
    app = state.apps.get(app_id) or state.deleted_apps.get(app_id)
    return {
        "flynn-controller.app": app_id,
        "flynn-controller.app_name": app.name if app is not None else "",
        "flynn-controller.release": release_id,
        "flynn-controller.type": process_type,
    }


def formation_spec(state: State, job_id: str, slot: Slot) -> JobSpec:
    app_id, release_id, process_type = slot
    found = release(state, release_id)
    if found is None:
        raise SpecError(f"release {release_id} not found")
    process: dict[str, Any] = found.processes.get(process_type) or {}
    entrypoint = tuple(process.get("entrypoint") or ())
    cmd = tuple(process.get("cmd") or ())
    if not entrypoint and not cmd:
        args = tuple(process.get("args") or ())
        entrypoint, cmd = args[:1], args[1:]
    env = dict(found.env) | dict(process.get("env") or {})
    env |= {
        "FLYNN_APP_ID": app_id,
        "FLYNN_RELEASE_ID": release_id,
        "FLYNN_PROCESS_TYPE": process_type,
        "FLYNN_JOB_ID": job_id,
    }
    return JobSpec(
        job_id=job_id,
        app_id=app_id,
        release_id=release_id,
        process_type=process_type,
        argv=(*entrypoint, *cmd),
        env=env,
        artifact=_artifact(state, found.artifact_id),
        ports=len(process.get("ports") or ()),
        limits=_limits(process.get("resources") or DEFAULT_RESOURCES),
        entrypoint=entrypoint,
        cmd=cmd,
    )


def one_off_spec(state: State, job: Job) -> JobSpec:
    found = release(state, job.release_id)
    if found is None:
        raise SpecError(f"release {job.release_id} not found")
    return JobSpec(
        job_id=job.id,
        app_id=job.app_id,
        release_id=job.release_id,
        process_type="",
        argv=(*job.entrypoint, *job.cmd),
        env=dict(job.env),
        artifact=_artifact(state, found.artifact_id),
        limits=_limits(DEFAULT_RESOURCES),
        entrypoint=job.entrypoint,
        cmd=job.cmd,
    )


def _artifact(state: State, artifact_id: str | None) -> Artifact:
    found = artifact(state, artifact_id or "")
    if found is None:
        raise SpecError(f"artifact {artifact_id} not found")
    return found


def _limits(resources: dict[str, Any]) -> dict[str, int]:
    return {
        name: int(spec["limit"])
        for name, spec in resources.items()
        if isinstance(spec, dict) and isinstance(spec.get("limit"), int)
    }
