"""The platform at a glance: per app, its release, its process counts, its jobs' states
and its latest deployment (what the dashboard's apps page shows)."""

from __future__ import annotations

from domain.objects import JSON, App
from domain.states import ACTIVE_JOB_STATES, JobState
from domain.timefmt import format_time
from projections.apps import all_apps
from projections.deployments import app_deployments, scale
from projections.state import State

_FAILED = frozenset({JobState.CRASHED, JobState.FAILED})


def app_summary(state: State, app: App) -> JSON:
    """One app at a glance: the active jobs by id (a live view moves them from state to
    state) and how many of its jobs ever crashed or failed."""
    active: dict[str, str] = {}
    failed = 0
    for job_id in state.app_jobs.get(app.id, {}):
        job = state.jobs[job_id]
        if job.state in ACTIVE_JOB_STATES:
            active[job.id] = job.state
        elif job.state in _FAILED:
            failed += 1
    deployments = app_deployments(state, app.id)
    latest = deployments[0] if deployments else None
    return {
        "id": app.id,
        "name": app.name,
        "release": app.release_id,
        "processes": scale(state, app.id, app.release_id),
        "jobs": active,
        "failed_jobs": failed,
        "deployment": None if latest is None else latest.to_json(),
        "created_at": format_time(app.created_at),
    }


def overview(state: State, app_ids: frozenset[str] | None = None) -> list[JSON]:
    """Every live app at a glance (of `app_ids` only, when given), newest first."""
    return [
        app_summary(state, app) for app in all_apps(state) if app_ids is None or app.id in app_ids
    ]
