"""Deployment queries on State: lookups and lists, and the facts a deployment steps on.

A deployment's progress is not kept anywhere but in the log: its formations, the jobs the
scheduler reported and its own `deployment` events (folded into `DeploymentProgress`) say
what it has done and what it waits for. Everything here is a pure function of `State`.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from domain.objects import Deployment
from domain.states import JobState
from projections.order import newest_first
from projections.state import DeploymentProgress, State


def deployment(state: State, deployment_id: str) -> Deployment | None:
    return state.deployments.get(deployment_id)


def app_deployments(state: State, app_id: str) -> list[Deployment]:
    """The app's deployments, newest first (Flynn: deploymentListQuery)."""
    return newest_first(state.deployments[d] for d in state.app_deployments.get(app_id, {}))


def unfinished(state: State) -> list[Deployment]:
    """Every deployment not yet complete or failed, those of deleted apps included."""
    return [state.deployments[d] for d in state.deployment_progress if d in state.deployments]


def progress(state: State, deployment_id: str) -> DeploymentProgress | None:
    return state.deployment_progress.get(deployment_id)


def scale(state: State, app_id: str, release_id: str | None) -> dict[str, int]:
    """The live formation's process counts ({} when there is none, or it was deleted)."""
    formation = state.formation(app_id, release_id) if release_id else None
    return dict(formation.processes or {}) if formation is not None else {}


def jobs_up(
    state: State,
    app_id: str,
    release_id: str | None,
    states: frozenset[JobState] = frozenset({JobState.UP}),
) -> Counter[str]:
    """How many jobs of the release are in `states` now (default: up), by process type."""
    counts: Counter[str] = Counter()
    for job_id in state.app_jobs.get(app_id, {}):
        job = state.jobs[job_id]
        if job.release_id == release_id and job.state in states:
            counts[job.type] += 1
    return counts


def targets(state: State, d: Deployment) -> dict[str, int]:
    """The new formation: the old counts of the types the new release has.

    Flynn HEAD (worker/deployment): a type the new release dropped is not started again.
    """
    release = state.releases.get(d.new_release_id)
    kinds = release.processes if release is not None else {}
    return {t: n for t, n in sorted(d.processes.items()) if t in kinds}


def steps(p: DeploymentProgress, release: str, job_type: str, job_state: str) -> int:
    """How many `running` events the deployment emitted for (release, type, state)."""
    return p.steps.get((release, job_type, job_state), 0)


def new_job_failures(p: DeploymentProgress, d: Deployment) -> int:
    """Jobs of the new release that went down (or crashed) while the deployment ran."""
    reports = p.reports.items()
    new, down = d.new_release_id, JobState.DOWN
    return sum(n for (r, _, phase), n in reports if r == new and phase == down)


def deadline(state: State, d: Deployment) -> datetime | None:
    """When the current wait times out: deploy_timeout seconds after the last progress.

    Progress is the deployment's latest event or a change to one of its two formations (a
    step that asked for no job to start still restarts the clock).
    """
    p = state.deployment_progress.get(d.id)
    if p is None:
        return None
    moments = [p.touched_at]
    for release_id in (d.old_release_id, d.new_release_id):
        formation = state.formations.get((d.app_id, release_id or ""))
        if formation is not None:
            moments.append(formation.updated_at)
    return max(moments) + timedelta(seconds=d.deploy_timeout)
