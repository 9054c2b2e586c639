"""Leadership among the controllers of one log: a session-level PostgreSQL advisory lock,
held on a connection taken for nothing else while this process leads.

A standby tries for the lock every `retry` seconds; when the leader's process dies its
session ends and the lock with it, and a standby takes over. The leader checks its
connection every CHECK_INTERVAL and stands down when it breaks (so that a leader cut off
from the database overlaps a new one for seconds at most). Each role has a lock of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from eventstore.postgres import UNAVAILABLE
from eventstore.store import StoreUnavailableError

#: Seconds between the leader's checks of its lock connection.
CHECK_INTERVAL = 1.0
DATABASE_ERRORS = (*UNAVAILABLE, asyncpg.PostgresError, StoreUnavailableError)


class Election(Protocol):
    def leadership(self) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """Wait until this process leads; the event is set when it no longer does."""
        ...


class AlwaysLeader:
    """The only process there is (the in-memory log)."""

    @contextlib.asynccontextmanager
    async def leadership(self) -> AsyncIterator[asyncio.Event]:
        yield asyncio.Event()


class AdvisoryLockElection:
    """Leads while holding the advisory lock `key` on a connection of `pool`."""

    def __init__(self, pool: asyncpg.Pool, retry: float, key: int) -> None:
        self._pool = pool
        self._retry = retry
        self._key = key

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
            with contextlib.suppress(*DATABASE_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock($1)", self._key)
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._pool.release(conn)

    async def _campaign(self) -> asyncpg.Connection:
        while True:
            try:
                conn = await self._pool.acquire()
            except DATABASE_ERRORS:
                await asyncio.sleep(self._retry)
                continue
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                    return conn
            except DATABASE_ERRORS:
                pass
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._pool.release(conn)
            await asyncio.sleep(self._retry)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                async with asyncio.timeout(CHECK_INTERVAL * 5):
                    await conn.fetchval("SELECT 1")
            except DATABASE_ERRORS:
                lost.set()
                return
