"""Keeps the SQL read model current from this process's fold: the changes of its folded
batches (projections.changes), written by one process per database at a time.

Only with the Postgres log (the in-memory one has no database to project into). The writer
is the holder of an advisory lock (service/election.py); it writes what its fold changed
since the position the SQL model holds, at most once per PACE. Every process keeps the
changes of its recent batches (projections.recent_changes), so that the next writer, when
this one stops, writes only what changed since; one whose changes do not reach back to the
stored position (it started after it, or fell behind the bound) writes everything its fold
holds instead (a resync). While the database is unavailable the writer stands down and
tries again; any other failure is logged and reported in the health status
(service/tasks.py), and the task stops rather than write a wrong model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore, StoreUnavailableError
from projections.changes import Changes, everything
from projections.memory import MemoryReadModel
from projections.recent_changes import RecentChanges
from projections.sql import SqlReadModel, Written
from service.election import AdvisoryLockElection
from service.tasks import Health, background

logger = logging.getLogger(__name__)

#: The component's name in the health status.
HEALTH_NAME = "sql_projector"
#: The advisory lock of the SQL model's writer: "evensql" in ASCII.
LOCK_KEY = 0x6576656E73716C
#: Seconds between attempts while the database is unavailable: doubling, up to the max.
RETRY_MIN = 0.5
RETRY_MAX = 2.0  # the health status recovers this soon after the database does
#: Seconds a standby waits between tries for the writer's lock.
LEADER_RETRY = 2.0
#: Seconds the writer lets changes gather between its transactions (it serves no GET: per
#: append, its transactions were a fifth of the service's CPU under single writes).
PACE = 0.05
#: Seconds a shutdown gives the writer to write what is left.
FLUSH_TIMEOUT = 5.0


class SqlWriter:
    """Writes the SQL read model from `model`'s fold whenever this process holds the lock."""

    def __init__(
        self,
        store: PostgresEventStore,
        model: MemoryReadModel,
        *,
        recent: RecentChanges | None = None,
        pace: float | None = None,
        leader_retry: float | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.recent = recent or RecentChanges(model.last_id)
        self.sink = SqlReadModel(store.pool, model.encoded)
        self.leader_retry = LEADER_RETRY if leader_retry is None else leader_retry
        self.pace = PACE if pace is None else pace
        self.leading = False
        self.position = 0  # the SQL model's, as this process last wrote or found it
        self.rows = 0  # rows and links this process wrote
        self.resyncs = 0
        self._writing = asyncio.Lock()

    def changes_since(self, stored: int) -> Changes | None:
        """What the fold changed after `stored`: the recent changes, or everything the fold
        holds if they do not reach back that far; None if the SQL model is not behind."""
        if stored >= self.model.last_id:
            return None
        changes = self.recent.since(stored)
        if changes is not None:
            return changes
        self.resyncs += 1
        logger.info(
            "the SQL read model is at event %d, before the changes this process kept "
            "(from %d): writing all of its state at %d",
            stored,
            self.recent.start,
            self.model.last_id,
        )
        return everything(self.model.state, self.model.last_id, self.model.last_at)

    async def write(self) -> Written:
        """One transaction: what changed since the stored position, and the new position."""
        async with self._writing:
            written = await self.sink.write(self.changes_since)
        self.position = written.position
        self.rows += written.rows
        self.recent.forget(written.position)
        return written

    async def run(self, health: Health) -> None:
        """Migrate, then write whenever this process leads, until cancelled or broken (a
        failure other than the database's unavailability is raised)."""
        # The lock on a connection of its own, not the log's pool: the log can close (its
        # pool waiting for its connections) whether or not this process leads.
        sessions = await self.store.session_pool()
        election = AdvisoryLockElection(sessions, self.leader_retry, LOCK_KEY)
        delay = RETRY_MIN
        try:
            while True:
                try:
                    await self.sink.migrate()
                    health[HEALTH_NAME] = ""
                    async with election.leadership() as lost:
                        self.leading = True
                        try:
                            await self._lead(lost, health)
                        finally:
                            self.leading = False
                except StoreUnavailableError as exc:
                    # The position is in the database: the next writer resumes from it.
                    logger.warning("SQL read model writer waiting for the database (%s)", exc)
                    health[HEALTH_NAME] = f"unavailable: {exc}"
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                delay = RETRY_MIN
        finally:
            sessions.terminate()  # the lock was given back as leadership ended

    async def _lead(self, lost: asyncio.Event, health: Health) -> None:
        # All that the last writer may have seen, folded first: never behind the tables.
        await self.model.reached(await self.store.last_id())
        while not lost.is_set():
            if self.model.last_id > self.position:
                await self.write()
                health[HEALTH_NAME] = ""
                await asyncio.sleep(self.pace)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.model.changed(), 1.0)

    async def flush(self) -> None:
        """At shutdown: write what is left, if this process is the writer."""
        if not self.leading:
            return
        try:
            await asyncio.wait_for(self.write(), FLUSH_TIMEOUT)
        except (StoreUnavailableError, TimeoutError) as exc:
            logger.warning("the SQL read model was left behind at shutdown (%r)", exc)


@contextlib.asynccontextmanager
async def sql_projection(
    store: EventStore, model: MemoryReadModel, health: Health
) -> AsyncIterator[SqlWriter | None]:
    """The model's changes kept from now on (enter before it catches up: a writer of this
    process then needs no resync), and the writer running in the background, while the
    block runs; at its end, what is left is written."""
    if not isinstance(store, PostgresEventStore):
        yield None
        return
    writer = SqlWriter(store, model)
    model.add_follower(writer.recent)
    try:
        async with background(HEALTH_NAME, lambda: writer.run(health), health):
            yield writer
            await writer.flush()
    finally:
        model.remove_follower(writer.recent)
