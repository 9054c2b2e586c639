"""The scheduler in the service (SCHEDULER=local): one leader among the controllers of a log.

The leader holds a PostgreSQL advisory lock of its own (service/election.py); a standby
tries for it every `leader_retry` seconds. With the in-memory log there is only this
process: it always leads.

A new leader first waits until its read model holds the whole log, then the scheduler
recovers the host's jobs (processes, and containers with JOB_HOST=podman; the host keeps its
state under the data directory, so that controllers on one machine share it) before it
changes anything. The host also serves attached clients (controller/attach.py). Standing
down, or stopping the service, leaves the jobs running for the next leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import attrs

from applog.store import LogStore
from commands.dispatch import Dispatcher
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from host.mixed import open_host
from projections.memory import MemoryReadModel
from scheduler import Backoff, Scheduler
from service.election import (
    DATABASE_ERRORS,
    AdvisoryLockElection,
    AlwaysLeader,
    Election,
)
from service.settings import Settings
from service.tasks import Health, background

logger = logging.getLogger(__name__)

#: The advisory lock of the scheduler's leader: "evenflow" in ASCII.
LOCK_KEY = 0x6576656E666C6F77
HEALTH_NAME = "scheduler"


@attrs.define
class Scheduling:
    """What scheduling does in this process (for the status and for tests)."""

    enabled: bool
    leading: bool = False
    scheduler: Scheduler | None = None


@contextlib.asynccontextmanager
async def scheduling(
    settings: Settings,
    store: EventStore,
    model: MemoryReadModel,
    dispatcher: Dispatcher,
    logs: LogStore,
    health: Health,
) -> AsyncIterator[Scheduling]:
    """Scheduling in this process while the block runs (if SCHEDULER=local): leading
    whenever it can, reported in `health` if it fails."""
    state = Scheduling(enabled=settings.scheduler == "local")
    if not state.enabled:
        yield state
        return
    leader = Leader(settings, store, model, dispatcher, logs, state)
    async with background(HEALTH_NAME, leader.run, health):
        yield state


def election(store: EventStore, settings: Settings) -> Election:
    if isinstance(store, PostgresEventStore):
        return AdvisoryLockElection(store.pool, settings.leader_retry, LOCK_KEY)
    return AlwaysLeader()


@attrs.frozen
class Leader:
    """Runs the scheduler whenever this process leads."""

    settings: Settings
    store: EventStore
    model: MemoryReadModel
    dispatcher: Dispatcher
    logs: LogStore
    state: Scheduling

    async def run(self) -> None:
        """Lead whenever this process can, for ever."""
        elected = election(self.store, self.settings)
        state = self.state
        while True:
            async with elected.leadership() as lost:
                state.leading = True
                try:
                    await self._lead(lost)
                except DATABASE_ERRORS as exc:
                    logger.warning("scheduler standing down, the log is unavailable: %s", exc)
                finally:
                    state.leading, state.scheduler = False, None
            await asyncio.sleep(self.settings.leader_retry)

    async def _lead(self, lost: asyncio.Event) -> None:
        """Run the scheduler until leadership is lost (or the service stops)."""
        settings = self.settings
        await self.model.reached(await self.store.last_id())  # all the last leader reported
        host = open_host(
            settings.job_host,
            settings.host_id,
            settings.data_dir / "host",
            self.logs,
            artifact_root=settings.artifacts_dir,
            uid_range=settings.job_uid_range,
            stop_grace=settings.job_stop_grace,
            up_timeout=settings.job_up_timeout,
            poll_interval=settings.host_poll_interval,
            pull=settings.image_pull,
            runtime=settings.podman_runtime,
        )
        backoff = Backoff(delays=settings.restart_backoff, reset_after=settings.restart_reset)
        scheduler = Scheduler(self.model, self.dispatcher, host, backoff=backoff)
        self.state.scheduler = scheduler
        logger.info("scheduler leading on host %s (%s)", host.id, settings.data_dir / "host")
        running = asyncio.create_task(scheduler.run(), name="evenflow-scheduler")
        standing_down = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait({running, standing_down}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                running.result()  # it runs forever: here it failed
            logger.warning("scheduler lost its lock; standing by")
        finally:
            for task in (running, standing_down):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await host.close()
