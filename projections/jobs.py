"""Job queries over State: one job by id or uuid, an app's jobs, the active ones."""

from __future__ import annotations

import operator

from domain.objects import Job
from domain.states import ACTIVE_JOB_STATES
from projections.order import newest_first
from projections.state import State

_UPDATED = operator.attrgetter("updated_at", "id")


def job(state: State, job_id: str) -> Job | None:
    """A job by its full id, of any app (a deleted one's too) and in any state."""
    return state.jobs.get(job_id)


def find_job(state: State, app_id: str, ref: str) -> Job | None:
    """The app's job with full id `ref` ("<host>-<uuid>"), or with uuid `ref` (HEAD)."""
    found = state.jobs.get(ref)
    if found is not None:
        return found if found.app_id == app_id else None
    ref = ref.lower()
    for job_id in state.app_jobs.get(app_id, {}):
        found = state.jobs[job_id]
        if found.uuid == ref:
            return found
    return None


def app_jobs(state: State, app_id: str) -> list[Job]:
    """Every job of the app, in any state, newest first (Flynn: jobListQuery)."""
    return newest_first(state.jobs[j] for j in state.app_jobs.get(app_id, {}))


def active_jobs(state: State) -> list[Job]:
    """The jobs not ended yet, last updated first (Flynn HEAD: ListActive)."""
    active = (job for job in state.jobs.values() if job.state in ACTIVE_JOB_STATES)
    return sorted(active, key=_UPDATED, reverse=True)
