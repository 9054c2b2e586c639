"""Drives deployments: runs each app's strategy by changing formations and waiting for job events.

The deployer keeps no state of its own. All a deployment has done is in the log — its two
formations, its `deployment` events, the jobs the scheduler reported — so the deployer wakes
whenever the log moves (or a wait is due to time out), asks the pure `advance_deployment`
whether a step is due, and dispatches `AdvanceDeployment` when one is. The dispatcher decides
it again on the state it appends to, so a step already taken (by this process before a
restart, or by another controller on the same log) decides nothing: any number of deployers
can run, and a restarted one resumes, or fails a wait that timed out while it was away.

For a scheduler: it answers the `scale` events with job reports (`PUT /apps/:app/jobs/:job`);
`Deployer.advance()` runs one pass at once, and `jobs_up`/`targets` say what a deployment
counts as up and what it scales the new release to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import orjson

from commands.deployments import (
    MAX_NEW_JOB_FAILURES,
    STRATEGIES,
    AdvanceDeployment,
    FailDeployment,
    advance_deployment,
)
from commands.dispatch import Dispatcher
from commands.errors import DomainError
from domain.clock import now
from eventstore.record import RecordedEvent
from projections import causes
from projections.deployments import deadline, jobs_up, targets, unfinished
from projections.memory import MemoryReadModel
from service.tasks import Health, background

__all__ = [
    "HEALTH_NAME",
    "MAX_NEW_JOB_FAILURES",
    "SUPPORTED_STRATEGIES",
    "Deployer",
    "deploying",
    "jobs_up",
    "targets",
]

logger = logging.getLogger(__name__)

SUPPORTED_STRATEGIES = frozenset(STRATEGIES)
#: The component's name in the health status, and in its events' actors.
HEALTH_NAME = COMPONENT = "deployer"
#: The longest the deployer sleeps without looking (a missed wake-up, a clock jump).
MAX_SLEEP = 5.0
#: After the log was unavailable or kept moving: look again this much later.
RETRY_AFTER = 1.0


class Deployer:
    """Moves every unfinished deployment along, as far as the log says it can go now."""

    def __init__(
        self,
        model: MemoryReadModel,
        dispatcher: Dispatcher,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.model = model
        self.dispatcher = dispatcher
        self.clock = clock

    async def advance(self) -> datetime | None:
        """Take every step due now; returns when a wait will time out next (None: no wait)."""
        moment = self.clock()
        state = self.model.state
        due: list[AdvanceDeployment | FailDeployment] = []
        for d in unfinished(state):
            command = AdvanceDeployment(d.id, moment)
            # The decider is pure: asking it first spares the dispatcher the deployments that
            # wait, and finds the one it cannot decide (a bug) without holding up the others.
            try:
                if advance_deployment(state, command):
                    due.append(command)
            except Exception as exc:
                due.append(_fail(command, exc))
        for step in due:
            actor = causes.actor(state.causes, COMPONENT, "deployment", step.deployment_id)
            for record in await self.dispatcher.handle(step, actor=actor):
                _log_step(record)
        state = self.model.state
        # A deadline already past decided nothing: only later ones are worth waking up for.
        later = (deadline(state, d) for d in unfinished(state))
        return min((t for t in later if t is not None and t > moment), default=None)

    async def run(self) -> None:
        """Advance whenever the log moves or a wait is due; forever."""
        while True:
            seen = self.model.last_id
            try:
                wake_at = await self.advance()
            except DomainError as exc:  # the log is unavailable or kept moving: not a bug
                logger.warning("deployer: %s; looking again in %s s", exc.message, RETRY_AFTER)
                await asyncio.sleep(RETRY_AFTER)
                continue
            if self.model.last_id != seen:
                continue  # no await since the check: a change cannot slip by unseen
            timeout = MAX_SLEEP
            if wake_at is not None:
                # A hair past the deadline, so that the decider sees it passed.
                timeout = min(timeout, (wake_at - self.clock()).total_seconds() + 0.01)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0)):
                    await self.model.changed()


#: Characters of an unforeseen error's message kept in the deployment's error.
ERROR_CHARS = 200


def _fail(command: AdvanceDeployment, exc: Exception) -> FailDeployment:
    logger.error(
        "deployer: cannot decide the next step of deployment %s: failing it",
        command.deployment_id,
        exc_info=exc,
    )
    error = (
        f"the deployer could not decide its next step ({type(exc).__name__}: "
        f"{str(exc)[:ERROR_CHARS]}); its formations were left as they were"
    )
    return FailDeployment(command.deployment_id, error, command.now)


def _log_step(record: RecordedEvent) -> None:
    """A deployment's step at INFO, as its event says it."""
    if record.object_type != "deployment":
        return
    step = orjson.loads(record.data)
    job = " ".join(str(step[k]) for k in ("job_type", "job_state") if step.get(k))
    error = f": {step['error']}" if step.get("error") else ""
    logger.info("deployer: deployment %s of app %s %s%s%s", record.object_id, record.app_id,
                step.get("status"), f" ({job})" if job else "", error)  # fmt: skip


@contextlib.asynccontextmanager
async def deploying(
    model: MemoryReadModel, dispatcher: Dispatcher, health: Health
) -> AsyncIterator[Deployer]:
    """A deployer running in the background while the block runs (a failure is reported
    in `health`, not silent)."""
    deployer = Deployer(model, dispatcher)
    async with background(HEALTH_NAME, deployer.run, health):
        yield deployer
