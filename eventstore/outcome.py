"""What a PostgreSQL error means for an append: unavailable, refused, or of open outcome;
and, for one whose answer never came, whether it committed after all."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from eventstore.record import NewEvent
from eventstore.store import (
    EventRefusedError,
    IdempotencyKeyTakenError,
    OutcomeUnknownError,
    StoreError,
)

#: Errors that mean "the database is unreachable or cannot write now": retryable.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, starting up, canceled
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a failed-over primary, now a replica
    asyncpg.InterfaceError,  # the connection was closed under us
    asyncpg.InternalClientError,  # a protocol state broken by a dropped connection
)
#: Seconds to find out whether an append left unanswered committed (connect, end its
#: session, read its rows back); past them, its outcome is reported as unknown.
RESOLVE_TIMEOUT = 5.0
#: SQLSTATE classes of errors that refuse what an append holds (data exceptions, integrity
#: violations, program limits): the client's data, not the database, is at fault.
_REFUSED_CLASSES = frozenset({"22", "23", "54"})
#: The index that makes an Idempotency-Key usable once (sql/0002_event_meta.sql).
_IDEMPOTENCY_INDEX = "events_idempotency_key"

_END_SESSION = """
SELECT pg_terminate_backend(pid, $3) FROM pg_stat_activity WHERE pid = $1 AND backend_start <= $2
"""
_SESSION_LEFT = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND backend_start <= $2"
_ROWS_AT = """
SELECT event_id, type, object_id, unique_id, data, meta, created_at FROM events
 WHERE event_id = ANY($1::bigint[])
"""


async def json_as_bytes(conn: asyncpg.Connection) -> None:
    """Payloads stay bytes both ways: json's binary wire format is its text, so nothing is
    parsed or re-encoded on the way in or out."""
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary"
    )


def in_doubt(exc: BaseException) -> bool:
    """Whether a failure that came while an append's commit was under way leaves its outcome
    open: no answer came (timeout, lost connection), or the server ended the session
    (administrator shutdown, which may come after a commit reached the disk). asyncpg's
    interface errors are raised before anything is sent (a connection found closed or in
    the wrong state), and so is a broken pipe while sending."""
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return False
    if isinstance(exc.__cause__, BrokenPipeError):
        # The server was gone as the statement was being sent: it never had all of it, and
        # a statement runs and commits only once it has arrived whole.
        return False
    if isinstance(exc, asyncpg.PostgresError):
        return isinstance(
            exc, (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)
        )
    return True


def refusal(exc: asyncpg.PostgresError) -> StoreError:
    """The store's error for a server error that refused one member's append."""
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == _IDEMPOTENCY_INDEX:
        return IdempotencyKeyTakenError(f"the Idempotency-Key is taken: {exc}")
    if str(exc.sqlstate or "")[:2] in _REFUSED_CLASSES:
        return EventRefusedError(f"the event log refused the events: {exc}")
    return StoreError(f"the event log failed to append: {exc}")


async def committed_at(
    dsn: str, pid: int, started_before: datetime, rows: list[tuple[int, NewEvent]]
) -> datetime | None:
    """When the append of `rows` (planned ids and events) by the session `pid` committed, or
    None if it did not; OutcomeUnknownError if that cannot be found out within
    RESOLVE_TIMEOUT. `started_before` is a server time after that session started (a later
    session with a reused pid is not it).

    Its rows could still be committing while we look (a session stuck in the server, or
    in the middle of its commit), so its session is ended first, and waited for: once
    the backend is gone, its transaction has committed or never will, and its planned
    ids hold its events exactly when it did.
    """
    if not rows:
        return None  # it had nothing to write
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            conn = await asyncpg.connect(dsn, timeout=RESOLVE_TIMEOUT)
            try:
                await json_as_bytes(conn)
                wait_ms = int(RESOLVE_TIMEOUT * 1000)
                await conn.fetchval(_END_SESSION, pid, started_before, wait_ms)
                if await conn.fetchval(_SESSION_LEFT, pid, started_before):
                    raise OutcomeUnknownError("its session could not be ended")
                found = await conn.fetch(_ROWS_AT, [event_id for event_id, _ in rows])
            finally:
                conn.terminate()
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise OutcomeUnknownError(f"the database cannot tell: {exc!r}") from exc
    by_id = {row[0]: row for row in found}
    for event_id, event in rows:
        row = by_id.get(event_id)
        mine = (event.type, event.object_id, event.unique_id, event.data, event.meta)
        if row is None or tuple(row[1:6]) != mine:
            return None  # not ours: that append's transaction did not commit
    created_at: datetime = by_id[rows[0][0]][6]
    return created_at
