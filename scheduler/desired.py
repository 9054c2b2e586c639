"""What should run, read from the log's fold: pure functions of `State`.

A formation asks for `n` jobs of each of its process types; a deleted formation, a deleted
app, or a type missing from the release asks for none. One-off jobs are asked for by their
`pending` report (RunJob) and run once.
"""

from __future__ import annotations

from collections.abc import Container

from domain.objects import Job
from domain.states import ACTIVE_JOB_STATES, JobState
from projections.releases import release
from projections.state import State

Slot = tuple[str, str, str]  # (app id, release id, process type): one formation entry


def desired(state: State) -> dict[Slot, int]:
    """How many jobs each formation entry asks for (entries asking for none are left out)."""
    wanted: dict[Slot, int] = {}
    for (app_id, release_id), formation in state.formations.items():
        if formation.processes is None or app_id not in state.apps:
            continue
        runs = release(state, release_id)
        if runs is None or not runs.artifact_id:
            continue
        for process_type, count in formation.processes.items():
            if count > 0 and process_type in runs.processes:
                wanted[(app_id, release_id, process_type)] = count
    return wanted


def slot_of(job: Job) -> Slot | None:
    """The formation entry a job belongs to; None for a one-off job (no type)."""
    return (job.app_id, job.release_id, job.type) if job.type else None


def unowned(state: State, owned: Container[str]) -> tuple[list[Job], list[Job]]:
    """Live jobs in the log that no run of the scheduler stands for: the pending ones (nobody
    started them yet: to be run) and the others (nobody runs them any more: lost)."""
    pending: list[Job] = []
    lost: list[Job] = []
    waiting = JobState.PENDING
    for job in state.jobs.values():  # not active_jobs: its order is not needed here
        if job.state in ACTIVE_JOB_STATES and job.id not in owned:
            (pending if job.state == waiting else lost).append(job)
    key = lambda job: (job.created_at, job.id)  # noqa: E731
    return sorted(pending, key=key), sorted(lost, key=key)
