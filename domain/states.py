"""The states a job and a deployment go through, as Flynn writes them, and their groupings.

The members are `str`s: on the wire, in the log and in comparisons they are Flynn's strings.
Hot paths keep members in module constants: reading one off its class goes through the
enum's metaclass (see bench/README.md).
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """A job's state, in the order a job may move through them (Flynn SEED's check, with
    HEAD's `pending` first): a report never moves a job backwards."""

    PENDING = "pending"
    STARTING = "starting"
    UP = "up"
    STOPPING = "stopping"
    DOWN = "down"
    CRASHED = "crashed"
    FAILED = "failed"


#: Each job state by its name: decoding looks up every job report's, and a dict is as cheap
#: as interning the string while calling the enum class is not (see bench/README.md).
JOB_STATES: dict[str, JobState] = {state.value: state for state in JobState}
#: Each job state's place in the order a job moves through them.
JOB_STATE_RANK: dict[JobState, int] = {state: rank for rank, state in enumerate(JobState)}
#: Not ended yet: a scheduler may still move a job out of these (Flynn HEAD:
#: controller/data/job.go ListActive).
ACTIVE_JOB_STATES = frozenset({JobState.PENDING, JobState.STARTING, JobState.UP, JobState.STOPPING})
#: A host runs (or was asked to run) the job: one asked to stop still runs until it reports
#: that it went down.
RUNNING_JOB_STATES = frozenset({JobState.STARTING, JobState.UP, JobState.STOPPING})
#: Ended for good, well or not (Flynn: controller/types Job.IsDown).
ENDED_JOB_STATES = frozenset({JobState.DOWN, JobState.CRASHED, JobState.FAILED})


class DeploymentStatus(StrEnum):
    """A deployment's status (Flynn: the strings controller/worker/deployment writes)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


#: Each deployment status by its name (see JOB_STATES).
DEPLOYMENT_STATUSES: dict[str, DeploymentStatus] = {s.value: s for s in DeploymentStatus}
#: A deployment in one of these has ended: it takes no further step.
FINISHED_DEPLOYMENT_STATUSES = frozenset({DeploymentStatus.COMPLETE, DeploymentStatus.FAILED})
