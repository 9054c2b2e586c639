"""Job states and deployment statuses: Flynn's strings, their order and their groupings."""

from datetime import UTC, datetime
from importlib import resources

import orjson

from domain.events import DeploymentStatusChanged
from domain.objects import Job
from domain.states import (
    ACTIVE_JOB_STATES,
    ENDED_JOB_STATES,
    JOB_STATE_RANK,
    RUNNING_JOB_STATES,
    DeploymentStatus,
    JobState,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_job_states_are_the_ones_a_job_report_may_name_in_order():
    """The enum lists exactly the states the job schema accepts, in the order a job moves."""
    schema = orjson.loads(resources.files("schemas").joinpath("job.json").read_bytes())
    accepted = [s for s in schema["properties"]["state"]["enum"] if s is not None]
    assert [state.value for state in JobState] == accepted
    assert sorted(JobState, key=JOB_STATE_RANK.__getitem__) == list(JobState)


def test_every_job_state_is_either_active_or_ended_and_running_ones_are_active():
    """Active and ended states split the job states; a running job is active and not pending."""
    assert set(JobState) == ACTIVE_JOB_STATES | ENDED_JOB_STATES
    assert not ACTIVE_JOB_STATES & ENDED_JOB_STATES
    assert ACTIVE_JOB_STATES - {JobState.PENDING} == RUNNING_JOB_STATES


def test_a_decoded_job_holds_a_member_and_writes_flynns_string():
    """A job read from JSON holds its state as a JobState and writes it back as a plain string."""
    doc = Job("h-1", "app", "rel", JobState.UP, T0, T0).to_json()
    job = Job.from_json(orjson.loads(orjson.dumps(doc)))
    assert job.state is JobState.UP
    assert orjson.loads(orjson.dumps(job.to_json()))["state"] == "up"


def test_a_decoded_deployment_event_holds_a_status_member():
    """A deployment event read from its data holds its status as a DeploymentStatus."""
    event = DeploymentStatusChanged("app", "d", "rel", DeploymentStatus.COMPLETE)
    data = orjson.loads(orjson.dumps(event.data()))
    assert data["status"] == "complete"
    decoded = DeploymentStatusChanged.from_data(data, "app", "d")
    assert decoded.status is DeploymentStatus.COMPLETE and decoded == event
