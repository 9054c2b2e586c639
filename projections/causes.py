"""What the service's own components act on, and which event and request caused it.

The scheduler and the deployer record events nobody asked them for directly: a job started
because a formation was scaled, a deployment's next step because it was created. Their
events name that cause (domain.actors: `causation_id`, the event; `correlation_id`, the
request at the origin of the chain). This index keeps, while it matters, the cause of each
formation (its latest `scale` event), each unfinished deployment (its creation) and each
live job (its first report), folded from the log's records beside `apply` (an event's id
and meta are not part of the event).
"""

from __future__ import annotations

from typing import NamedTuple

from domain.actors import Actor, caused_by
from domain.codec import actor_of
from domain.events import (
    DeploymentCreated,
    DeploymentStatusChanged,
    Event,
    FormationScaled,
    JobStateChanged,
)
from domain.states import ENDED_JOB_STATES, FINISHED_DEPLOYMENT_STATUSES, JobState
from eventstore.record import RecordedEvent


class Cause(NamedTuple):
    """An event that caused later ones, and the request at the origin of its chain."""

    event_id: int
    origin: str | None


#: ("formation", "<app>:<release>") | ("deployment", id) | ("job", id) -> its cause.
CauseIndex = dict[tuple[str, str], Cause]


def cause(record: RecordedEvent) -> Cause:
    actor = actor_of(record)
    return Cause(record.id, None if actor is None else actor.origin)


def actor(index: CauseIndex, component: str, kind: str, ident: str) -> Actor:
    """The actor of what `component` does for the object (kind, ident): caused by the
    object's indexed event, if known."""
    found = index.get((kind, ident))
    if found is None:
        return Actor(component=component)
    return caused_by(component, found.event_id, found.origin)


def fold(index: CauseIndex, record: RecordedEvent, event: Event) -> None:
    """Index `record` (whose event is `event`) if it causes what a component does."""
    # Exact types, most frequent first: this runs for every event folded.
    if type(event) is JobStateChanged:
        job = event.job
        if job.state == JobState.PENDING:
            index.setdefault(("job", job.id), cause(record))
        elif job.state in ENDED_JOB_STATES:
            index.pop(("job", job.id), None)
    elif type(event) is DeploymentStatusChanged:
        if event.status in FINISHED_DEPLOYMENT_STATUSES:
            index.pop(("deployment", event.deployment), None)
    elif type(event) is FormationScaled:
        index[("formation", record.object_id)] = cause(record)
    elif type(event) is DeploymentCreated and not event.deployment.finished:
        index[("deployment", event.deployment.id)] = cause(record)
