"""Job queries over State: one job by id or uuid, an app's jobs, the active ones."""

from __future__ import annotations

from typing import Any

from domain.objects import Job
from domain.states import ACTIVE_JOB_STATES
from projections.state import State


def find_job(state: State, app_id: str, ref: str) -> Job | None:
    """The app's job with full id `ref` ("<host>-<uuid>"), or with uuid `ref` (HEAD)."""
    job = state.jobs.get(ref)
    if job is not None:
        return job if job.app_id == app_id else None
    ref = ref.lower()
    for job_id in state.app_jobs.get(app_id, {}):
        job = state.jobs[job_id]
        if job.uuid == ref:
            return job
    return None


def _by_created(job: Job) -> tuple[Any, ...]:
    return (job.created_at, job.id)


def _by_updated(job: Job) -> tuple[Any, ...]:
    return (job.updated_at, job.id)


def app_jobs(state: State, app_id: str) -> list[Job]:
    """Every job of the app, in any state, newest first (Flynn: jobListQuery)."""
    jobs = (state.jobs[j] for j in state.app_jobs.get(app_id, {}))
    return sorted(jobs, key=_by_created, reverse=True)


def active_jobs(state: State) -> list[Job]:
    """Jobs not yet down, last updated first."""
    active = (job for job in state.jobs.values() if job.state in ACTIVE_JOB_STATES)
    return sorted(active, key=_by_updated, reverse=True)
