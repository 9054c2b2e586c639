"""The scheduler in the service (SCHEDULER=local): one leader among the controllers of a log.

Leader election is a session-level PostgreSQL advisory lock, held on a connection taken for
nothing else while this process leads. A standby tries for the lock every `leader_retry`
seconds; when the leader's process dies its session ends and the lock with it, and a standby
takes over. The leader checks its connection every second and stands down when it breaks
(so that a leader cut off from the database overlaps a new one for seconds at most). With the
in-memory log there is only this process: it always leads.

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
from typing import Protocol

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs

from applog.store import LogStore
from commands.dispatch import Dispatcher
from eventstore.postgres import UNAVAILABLE, PostgresEventStore
from eventstore.store import EventStore, StoreUnavailableError
from host.mixed import open_host
from projections.memory import MemoryReadModel
from scheduler import Backoff, Scheduler
from service.settings import Settings
from service.tasks import Health, background

logger = logging.getLogger(__name__)

#: The advisory lock of the scheduler's leader: "evenflow" in ASCII.
LOCK_KEY = 0x6576656E666C6F77
#: Seconds between the leader's checks of its lock connection.
CHECK_INTERVAL = 1.0
HEALTH_NAME = "scheduler"
_DATABASE_ERRORS = (*UNAVAILABLE, asyncpg.PostgresError, StoreUnavailableError)


@attrs.define
class Scheduling:
    """What scheduling does in this process (for the status and for tests)."""

    enabled: bool
    leading: bool = False
    scheduler: Scheduler | None = None


class Election(Protocol):
    def leadership(self) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """Wait until this process leads; the event is set when it no longer does."""
        ...


class AlwaysLeader:
    @contextlib.asynccontextmanager
    async def leadership(self) -> AsyncIterator[asyncio.Event]:
        yield asyncio.Event()


class AdvisoryLockElection:
    def __init__(self, pool: asyncpg.Pool, retry: float) -> None:
        self._pool = pool
        self._retry = retry

    @contextlib.asynccontextmanager
    async def leadership(self) -> AsyncIterator[asyncio.Event]:
        conn = await self._campaign()
        lost = asyncio.Event()
        watch = asyncio.create_task(self._watch(conn, lost))
        try:
            yield lost
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            # The pool's reset on release unlocks too; unlocking first says it at once.
            with contextlib.suppress(*_DATABASE_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
            with contextlib.suppress(*_DATABASE_ERRORS):
                await self._pool.release(conn)

    async def _campaign(self) -> asyncpg.Connection:
        while True:
            try:
                conn = await self._pool.acquire()
            except _DATABASE_ERRORS:
                await asyncio.sleep(self._retry)
                continue
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                    return conn
            except _DATABASE_ERRORS:
                pass
            with contextlib.suppress(*_DATABASE_ERRORS):
                await self._pool.release(conn)
            await asyncio.sleep(self._retry)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                async with asyncio.timeout(CHECK_INTERVAL * 5):
                    await conn.fetchval("SELECT 1")
            except _DATABASE_ERRORS:
                lost.set()
                return


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
    async with background(HEALTH_NAME, leader.run(), health):
        yield state


def election(store: EventStore, settings: Settings) -> Election:
    if isinstance(store, PostgresEventStore):
        return AdvisoryLockElection(store.pool, settings.leader_retry)
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
                except _DATABASE_ERRORS as exc:
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
