"""A run: the scheduler's side of one job, from its `pending` report to its final one.

The phase says what the scheduler has done with the job; the log says what was reported.
Each pass reports whatever the log lacks (`report_state`), so a report that failed (the log
was unavailable) is simply made again, and one the log already holds is not repeated.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from domain.objects import Job
from domain.states import JobState
from host.interface import HostEvent
from scheduler.desired import Slot, slot_of


class Phase(enum.Enum):
    """What the scheduler has done with a job; but for ENDED, the job state it stands for."""

    WAITING = JobState.PENDING  # recorded; the host is asked to start it at `run_at`
    STARTING = JobState.STARTING  # the host was asked to start it
    UP = JobState.UP  # the host said it is up
    STOPPING = JobState.STOPPING  # the host was asked to stop it
    ENDED = "ended"  # the host said it ended (or it never got to start): a final report is due


@attrs.define(eq=False)
class Run:
    job_id: str
    app_id: str
    release_id: str
    slot: Slot | None  # None: a one-off job, run once
    created_at: datetime  # stopping surplus jobs picks the newest first
    phase: Phase = Phase.WAITING
    restarts: int = 0  # Flynn HEAD's job.restarts: how many jobs this one replaces in a row
    run_at: float = 0.0  # monotonic time the host is asked to start it (restart backoff)
    stop_requested: bool = False  # stopped on purpose: it ends `down`, and is not a crash
    on_host: bool = False  # the host knows the job: it is told to forget it at the end
    up_at: float | None = None
    end: HostEvent | None = None
    orphan: bool = False  # running on the host, unknown to the log: stopped and forgotten

    @classmethod
    def of_job(cls, job: Job, run_at: float) -> Run:
        """A run for a job the log holds (a one-off job, or one adopted after a restart)."""
        return cls(job.id, job.app_id, job.release_id, slot_of(job), job.created_at, run_at=run_at)

    @property
    def live(self) -> bool:
        """Counted towards its formation: not stopping, not ended."""
        return self.phase in (Phase.WAITING, Phase.STARTING, Phase.UP) and not self.stop_requested

    def report_state(self) -> JobState:
        """The job state this run's phase stands for in the log."""
        phase = self.phase.value  # a job state, but for ENDED
        return phase if isinstance(phase, JobState) else self.outcome()[0]

    def outcome(self) -> tuple[JobState, int | None, str]:
        """The final state of an ended run, with its exit status and host error."""
        end = self.end
        if self.stop_requested:
            return JobState.DOWN, end.exit_status if end is not None else None, ""
        if end is None or not end.started:
            error = (end.error if end is not None else "") or "it did not start"
            return JobState.FAILED, None, error
        if end.exit_status == 0 and not end.error:
            return JobState.DOWN, 0, ""
        return JobState.CRASHED, end.exit_status, end.error
