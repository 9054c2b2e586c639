"""PostgresEventStore: the log in PostgreSQL, one transaction per append, with LISTEN/NOTIFY
wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import attrs

from eventstore.migrate import migrate
from eventstore.outcome import (
    UNAVAILABLE as UNAVAILABLE,  # where the other users of asyncpg find it
)
from eventstore.outcome import (
    committed_at,
    in_doubt,
    json_as_bytes,
    refusal,
)
from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent
from eventstore.stats import AppendStats
from eventstore.store import (
    _CANONICAL_UUID,
    PAGE_SIZE,
    ConcurrencyError,
    OutcomeUnknownError,
    StoreUnavailableError,
    check_events,
)
from eventstore.written import Written

logger = logging.getLogger(__name__)

CHANNEL = "evenflow_events"

#: Bytes of payloads a page of a read holds at most (one event at least): a page is held
#: and decoded whole, so large events come a few at a time.
PAGE_BYTES = 8 * 1024 * 1024
#: How long a subscriber sleeps without a notification before it looks anyway.
POLL_INTERVAL = 5.0
#: The same while the LISTEN connection is down: notifications cannot arrive then.
POLL_INTERVAL_UNLISTENED = 0.5
#: Seconds to wait for a connection before an append or read fails as unavailable.
CONNECT_TIMEOUT = 5.0
#: Seconds an append transaction may take before it fails as unavailable.
APPEND_TIMEOUT = 15.0
#: Seconds a subscriber waits for this store's append in flight before reading the log.
COMMIT_WAIT = 0.05

_COLUMNS = (
    "event_id, type, object_type, object_id, app_id::text, op, unique_id, data, created_at, meta"
)

_LOCK_HEAD = "SELECT head, locked_at, taken FROM evenflow_lock_head($1::text[])"
_APPEND = """
SELECT head, written_at, taken, written FROM evenflow_append(
    $1::bigint, $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::uuid[],
    $8::text[], $9::text[], $10::json[], $11::json[])
"""

_LAST_ID = "SELECT coalesce(max(event_id), 0) FROM events"
_GET = f"SELECT {_COLUMNS} FROM events WHERE event_id = $1"
_BETWEEN = f"SELECT {_COLUMNS} FROM events WHERE event_id > $1 AND event_id <= $2 ORDER BY event_id"
_BACKEND_START = "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"


def _unavailable(exc: BaseException) -> StoreUnavailableError:
    """The error for a database that cannot be reached now, saying why (a timeout says
    nothing by itself)."""
    reason = str(exc) or (
        "the database did not answer in time" if isinstance(exc, TimeoutError) else repr(exc)
    )
    return StoreUnavailableError(f"the event log is unavailable: {reason}")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The read pool's reset: its connections only ever run single SELECTs in autocommit,
    which leave no session state behind, so the default reset's round trip (UNLISTEN,
    RESET ALL, ...: a third of a page read's cost when the page is small) is skipped."""
    if conn.is_in_transaction():  # defensive: nothing here opens one
        await conn.execute("ROLLBACK")


Planned = list[tuple[int, NewEvent]]


@attrs.frozen
class _Sent:
    """An append whose commit was asked for: until its answer comes, its outcome is open.

    `pid` is its session's backend; `started_before` a server time after that backend
    started (a later backend with a reused pid is not it).
    """

    pid: int
    started_before: datetime
    planned: Planned
    base: int


@attrs.define
class _Attempt:
    """What an append sent so far: read by whoever handles its failure."""

    sent: _Sent | None = None
    seen: list[RecordedEvent] = attrs.field(factory=list)


def plan(events: Sequence[NewEvent], expected: int | None, head: int, taken: set[str]) -> Planned:
    """What an append writes: ids from head + 1, events whose unique id is `taken` (or
    earlier in `events`) dropped; ConcurrencyError if `expected` is not the head."""
    if expected is not None and expected != head:
        raise ConcurrencyError(expected, head)
    rows = []
    taken = set(taken)
    for event in events:
        if event.unique_id is not None:
            if event.unique_id in taken:
                continue
            taken.add(event.unique_id)
        head += 1
        rows.append((head, event))
    return rows


def _append_args(head: int, planned: Planned) -> list[Any]:
    events = [event for _, event in planned]
    return [
        head,
        [e.unique_id for e in events if e.unique_id is not None],
        [event_id for event_id, _ in planned],
        [e.type for e in events],
        [e.object_type for e in events],
        [e.object_id for e in events],
        [e.app_id for e in events],
        [e.op for e in events],
        [e.unique_id for e in events],
        [e.data for e in events],
        [e.meta for e in events],
    ]


def _where(filter: EventFilter, args: list[Any]) -> str:
    """SQL conditions for `filter`, appending their parameters to `args`."""
    clauses = []
    if filter.app_id is not None:
        args.append(filter.app_id)
        clauses.append(f"app_id = ${len(args)}::uuid")
    if filter.object_types:
        args.append(list(filter.object_types))
        clauses.append(f"object_type = ANY(${len(args)}::text[])")
    if filter.object_id is not None:
        args.append(filter.object_id)
        clauses.append(f"object_id = ${len(args)}")
    if filter.app_ids is not None:
        args.append(sorted(a for a in filter.app_ids if _CANONICAL_UUID.fullmatch(a)))
        clauses.append(f"app_id = ANY(${len(args)}::uuid[])")
    if filter.hidden_types:
        args.append(sorted(filter.hidden_types))
        clauses.append(f"object_type <> ALL(${len(args)}::text[])")
    return "".join(f" AND {clause}" for clause in clauses)


def _page(where: str, order: str) -> str:
    """A page of events: those matching `where` in `order` of id, at most $2 of them, and
    at most PAGE_BYTES of payloads (the first one whatever its size)."""
    return f"""
SELECT {_COLUMNS} FROM (
    SELECT *, sum(octet_length(data::text)) OVER (ORDER BY event_id {order}) AS upto
      FROM events WHERE {where} ORDER BY event_id {order} LIMIT $2
) page WHERE upto - octet_length(data::text) < {PAGE_BYTES} ORDER BY event_id {order}
"""


def _more(page: list[RecordedEvent], limit: int) -> bool:
    """Whether events may follow a page: it is full, by count or by bytes."""
    return len(page) >= limit or sum(len(event.data) for event in page) >= PAGE_BYTES


def _matches_nothing(filter: EventFilter) -> bool:
    return filter.app_id is not None and not _CANONICAL_UUID.fullmatch(filter.app_id)


class _Listener:
    """One dedicated LISTEN connection per store; wakes subscribers on every notification."""

    def __init__(self, dsn: str, on_head: Callable[[int], None]) -> None:
        self._dsn = dsn
        self._on_head = on_head
        self.wake = asyncio.Event()
        self.connected = False
        self.connections = 0  # (re)connections so far: notifications may be missed between
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="evenflow-event-listener")

    def notify_all(self) -> None:
        self.wake.set()
        self.wake = asyncio.Event()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._on_head(int(payload))
        self.notify_all()

    async def _run(self) -> None:
        delay = 0.1
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
            except UNAVAILABLE as exc:
                logger.warning("event listener cannot connect (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.connected = True
                self.connections += 1
                delay = 0.1
                # Notifications may have been missed while we were away: look now.
                self.notify_all()
                await lost.wait()
                logger.warning("event listener connection lost; reconnecting")
            except UNAVAILABLE as exc:
                logger.warning("event listener failed (%s); reconnecting", exc)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
            self.notify_all()
            await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class PostgresEventStore:
    """The log in one `events` table.

    Each append is one transaction (one lock, one multi-row insert, one notification, one
    WAL flush) on the store's own writer connection, one after the other: a writer of many
    small appends batches them itself (the service's dispatcher does, commands/dispatch.py).
    """

    def __init__(self, pool: asyncpg.Pool, dsn: str, read_pool: asyncpg.Pool | None = None) -> None:
        self._pool = pool
        # The store's own reads (pages, heads, single events) use a pool without a reset
        # round trip; `pool` (with asyncpg's reset) is for others' sessions (see `pool`).
        self._read_pool = read_pool or pool
        self._dsn = dsn
        self._written = Written()
        # Set while an append is under way (and handed its records to this store's subscribers
        # as it ends): its notification may be handled before the commit's own answer, and a
        # subscriber woken by it waits for the append (subscribe).
        self._committed: asyncio.Event | None = None
        self._appending = asyncio.Lock()  # one append at a time on the writer connection
        self._writer_conn: asyncpg.Connection | None = None
        self._writer_started = datetime.min  # the writer connection's backend start
        self._listener = _Listener(dsn, self._seen_head)
        self._closing = False
        # The log head as last seen (written, notified or found); appends plan against it.
        self._head_hint = 0
        self.stats = AppendStats()  # read by the service's metrics

    @classmethod
    async def open(
        cls, dsn: str, *, min_size: int = 1, max_size: int = 10, migrate_schema: bool = True
    ) -> PostgresEventStore:
        """Connect, apply the log's migrations, and start listening."""
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=json_as_bytes,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": "evenflow"},
        )
        read_pool = None
        try:
            if migrate_schema:
                async with pool.acquire() as conn:
                    await migrate(conn, "eventstore", "eventstore")
            read_pool = await asyncpg.create_pool(
                dsn,
                min_size=0,
                max_size=max_size,
                init=json_as_bytes,
                reset=_keep_session,
                timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": "evenflow"},
            )
        except BaseException:
            await pool.close()
            raise
        store = cls(pool, dsn, read_pool)
        store._head_hint = await store.last_id()
        store._listener.start()
        return store

    @property
    def pool(self) -> asyncpg.Pool:
        """A connection pool on the log's database for other components (SQL read model,
        leader election): connections are fully reset when released."""
        return self._pool

    async def session_pool(self, size: int = 1) -> asyncpg.Pool:
        """A pool of its own on the log's database, connecting when first used: for
        sessions that outlive requests (a leader's lock), which must not hold up the closing
        of the log's pools. The caller closes it."""
        return await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=size,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": "evenflow"},
        )

    @property
    def read_pool(self) -> asyncpg.Pool:
        """The pool of the store's own reads (for the metrics of connections in use)."""
        return self._read_pool

    @property
    def listening(self) -> bool:
        return self._listener.connected

    # -- appending -------------------------------------------------------------------

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        """See EventStore.append. The events reach this store's subscribers as this returns,
        in the caller's task (subscribe): a caller that folds them before its next await has
        folded them before any subscriber of this store sees them."""
        check_events(events)
        async with self._one_append():
            started = time.perf_counter()
            try:
                base, records = await self._append(events, expected_last_id)
            except ConcurrencyError:
                raise  # an answer to the caller, not a failure of the log
            except Exception:
                self.stats.failed += 1
                raise
            if records:
                self.stats.committed(len(records), time.perf_counter() - started)
                self._seen_head(records[-1].id)
                self._written.add(base, records)
        return records

    @contextlib.asynccontextmanager
    async def _one_append(self) -> AsyncIterator[None]:
        """One append at a time: while it is under way, a subscriber woken by its
        notification waits for it (see _committed); it ends without a pause in between."""
        async with self._appending:
            if self._closing:
                raise StoreUnavailableError("the event store is closing")
            committed = self._committed = asyncio.Event()
            try:
                yield
            finally:
                self._committed = None
                committed.set()

    async def _append(
        self, events: Sequence[NewEvent], expected: int | None
    ) -> tuple[int, list[RecordedEvent]]:
        """(the head it was planned against, the records written), or the store's error."""
        attempt = _Attempt()
        try:
            async with asyncio.timeout(APPEND_TIMEOUT):
                planned, now, base = await self._commit(events, expected, attempt)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            if isinstance(exc, UNAVAILABLE):
                await self._drop_writer_connection()  # whatever its state, start afresh
            if attempt.sent is None or not in_doubt(exc):
                raise _unavailable(exc) if isinstance(exc, UNAVAILABLE) else refusal(exc) from exc
            planned, base = attempt.sent.planned, attempt.sent.base
            now = await self._settle_in_doubt(attempt.sent, exc)
        return base, [RecordedEvent.of(event, i, now) for i, event in planned]

    async def _settle_in_doubt(self, sent: _Sent, exc: BaseException) -> datetime:
        """The commit time of an append whose commit went unanswered, if it committed; else
        StoreUnavailableError if it provably did not, OutcomeUnknownError if that is not
        known."""
        try:
            when = await committed_at(self._dsn, sent.pid, sent.started_before, sent.planned)
        except OutcomeUnknownError as unknown:
            logger.warning("an append's outcome is unknown: %s (after %r)", unknown, exc)
            raise
        if when is None:
            raise _unavailable(exc) from exc
        logger.warning("an append committed although its answer was lost (%r)", exc)
        return when

    async def _commit(
        self, events: Sequence[NewEvent], expected: int | None, attempt: _Attempt
    ) -> tuple[Planned, datetime, int]:
        """Write an append; returns its plan, commit time and the head it was planned against.

        First optimistically, in one round trip, against the head we last saw; if the log
        moved (another process wrote) or a unique id turned out to be used, once more
        inside a transaction that takes the lock before planning, which cannot miss.
        `attempt.sent` is set while a commit is under way.
        """
        conn, started = await self._writer_connection()
        pid = conn.get_server_pid()
        base = self._head_hint
        if expected is None or expected == base:
            planned = plan(events, None, base, set())
            attempt.sent = _Sent(pid, started, planned, base)  # one statement: commits as it ends
            head, now, _, written = await conn.fetchrow(_APPEND, *_append_args(base, planned))
            attempt.sent = None
            if written:
                self._seen_head(planned[-1][0] if planned else head)
                return planned, now, base
        # The log moved, a unique id is used, or the caller expects a head this store has not
        # seen: plan under the lock, against the head it holds.
        unique_ids = [e.unique_id for e in events if e.unique_id]
        async with conn.transaction():
            base, now, taken = await conn.fetchrow(_LOCK_HEAD, unique_ids)
            self._seen_head(base)
            planned = plan(events, expected, base, set(taken))  # a ConcurrencyError rolls back
            head, now, _, written = await conn.fetchrow(_APPEND, *_append_args(base, planned))
            assert written, "the append lock is held, so the plan cannot be stale"
            attempt.sent = _Sent(pid, started, planned, base)  # COMMIT, as the block ends
        attempt.sent = None
        self._seen_head(planned[-1][0] if planned else head)
        return planned, now, base

    async def append_after(
        self, after: int, decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]]
    ) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
        """See EventStore.append_after: one transaction holding the table lock that orders
        every append (evenflow_lock_head), on a connection of the pool, in turn with this
        store's appends; its events reach this store's subscribers as `append`'s do."""
        async with self._one_append():
            seen, written, base = await self._locked_append(after, decide)
            if written:
                self._seen_head(written[-1].id)
                self._written.add(base, written)
            elif seen:
                self._seen_head(seen[-1].id)
        return seen, written

    async def _locked_append(
        self, after: int, decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]]
    ) -> tuple[list[RecordedEvent], list[RecordedEvent], int]:
        attempt = _Attempt()
        try:
            async with asyncio.timeout(APPEND_TIMEOUT):
                seen, written, base = await self._append_after(after, decide, attempt)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            if attempt.sent is not None and in_doubt(exc):
                seen, sent = attempt.seen, attempt.sent
                when = await committed_at(self._dsn, sent.pid, sent.started_before, sent.planned)
                if when is None:
                    raise _unavailable(exc) from exc
                written = [RecordedEvent.of(e, i, when) for i, e in sent.planned]
                base = sent.base
            elif isinstance(exc, UNAVAILABLE):
                raise _unavailable(exc) from exc
            else:
                raise refusal(exc) from exc
        return seen, written, base

    async def _append_after(
        self,
        after: int,
        decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]],
        attempt: _Attempt,
    ) -> tuple[list[RecordedEvent], list[RecordedEvent], int]:
        async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as conn, conn.transaction():
            head, locked_at, _ = await conn.fetchrow(_LOCK_HEAD, [])
            rows = await conn.fetch(_BETWEEN, after, head)
            seen = attempt.seen = [RecordedEvent._make(row) for row in rows]
            events = decide(seen)
            if not events:
                return seen, [], head
            check_events(events)
            unique_ids = [e.unique_id for e in events if e.unique_id]
            _, _, taken = await conn.fetchrow(_LOCK_HEAD, unique_ids)  # the lock is held
            planned = plan(events, None, head, set(taken))
            _, now, _, written = await conn.fetchrow(_APPEND, *_append_args(head, planned))
            assert written, "the append lock is held, so the plan cannot be stale"
            # COMMIT, as the block ends: this session started before it took the lock.
            attempt.sent = _Sent(conn.get_server_pid(), locked_at, planned, head)
        return seen, [RecordedEvent.of(e, i, now) for i, e in planned], head

    async def _writer_connection(self) -> tuple[asyncpg.Connection, datetime]:
        """The writer's own connection (not pooled, so no reset query runs after each
        batch), and when its backend started."""
        if self._writer_conn is None or self._writer_conn.is_closed():
            conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
            try:
                await json_as_bytes(conn)
                self._writer_started = await conn.fetchval(_BACKEND_START)
            except BaseException:
                conn.terminate()
                raise
            self._writer_conn = conn
        return self._writer_conn, self._writer_started

    async def _drop_writer_connection(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            # Closed at once: a graceful close would wait on a database that may not answer.
            conn.terminate()

    def _seen_head(self, head: int) -> None:
        self._head_hint = max(self._head_hint, head)

    # -- reading ---------------------------------------------------------------------

    async def _fetch(self, sql: str, *args: Any) -> list[RecordedEvent]:
        try:
            async with self._read_pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
                rows = await conn.fetch(sql, *args)
        except UNAVAILABLE as exc:
            raise _unavailable(exc) from exc
        make = RecordedEvent._make
        return [make(row) for row in rows]

    async def last_id(self) -> int:
        try:
            async with self._read_pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
                head: int = await conn.fetchval(_LAST_ID)
        except UNAVAILABLE as exc:
            raise _unavailable(exc) from exc
        return head

    async def get(self, event_id: int) -> RecordedEvent | None:
        if not -(2**63) <= event_id < 2**63:
            return None
        found = await self._fetch(_GET, event_id)
        return found[0] if found else None

    async def read_page(
        self, after: int, limit: int, *, until: int | None = None, filter: EventFilter = ALL_EVENTS
    ) -> list[RecordedEvent]:
        """At most `limit` events with after < id <= until, ascending."""
        if _matches_nothing(filter):
            return []
        args: list[Any] = [after, limit]
        bound = ""
        if until is not None:
            args.append(until)
            bound = f" AND event_id <= ${len(args)}"
        where = _where(filter, args)
        return await self._fetch(_page(f"event_id > $1{bound}{where}", "ASC"), *args)

    async def read(
        self,
        after: int = 0,
        *,
        until: int | None = None,
        filter: EventFilter = ALL_EVENTS,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RecordedEvent]:
        while True:
            page = await self.read_page(after, page_size, until=until, filter=filter)
            for event in page:
                yield event
            if not _more(page, page_size):
                return
            after = page[-1].id

    async def read_backward(
        self,
        *,
        before_id: int | None = None,
        since_id: int | None = None,
        count: int | None = None,
        filter: EventFilter = ALL_EVENTS,
    ) -> AsyncIterator[RecordedEvent]:
        if _matches_nothing(filter):
            return
        remaining = count
        while remaining is None or remaining > 0:
            limit = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            args: list[Any] = [since_id or 0, limit]
            bound = ""
            if before_id is not None:
                args.append(before_id)
                bound = f" AND event_id < ${len(args)}"
            where = _where(filter, args)
            page = await self._fetch(_page(f"event_id > $1{bound}{where}", "DESC"), *args)
            for event in page:
                yield event
            if not _more(page, limit):
                return
            before_id = page[-1].id
            if remaining is not None:
                remaining -= len(page)

    async def subscribe(
        self, after: int = 0, filter: EventFilter = ALL_EVENTS
    ) -> AsyncIterator[RecordedEvent]:
        """Pull by position, woken by NOTIFY, with a poll as the fallback.

        Because id order is commit order, everything up to an observed head is final: a
        filtered reader may move its cursor to the head even when nothing matched. The head
        comes with the notification (its payload, or this store's own append), so a wake-up
        costs one query, or none when this store wrote everything new itself; the database
        is asked for its head at first, after a poll and while notifications may be missed.

        This store's own appends are served from memory (Written) once `append` has
        returned them: in the appender's task, so after whatever it does before its next
        await (the dispatcher folds them: a follower of the log in this process then finds
        them folded already).
        """
        cursor = after
        retry_delay = 0.1
        ask = True
        while True:
            wake = self._listener.wake
            connections = self._listener.connections
            try:
                if ask or not self._listener.connected:
                    self._seen_head(await self.last_id())
                head = self._head_hint
                page = self._written.between(cursor, head) if head > cursor else []
                if page is None and self._committed is not None:
                    # The news may be that append (see _committed); a slow commit must not hold
                    # up others' news, though: after a short wait the database is read.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._committed.wait(), COMMIT_WAIT)
                    page = self._written.between(cursor, head)
                more = False
                if page is None:
                    page = await self.read_page(cursor, PAGE_SIZE, until=head, filter=filter)
                    more = _more(page, PAGE_SIZE)
                elif not filter.is_all:
                    page = [event for event in page if filter.matches(event)]
            except StoreUnavailableError as exc:
                logger.warning("subscriber at %d waiting for the log: %s", cursor, exc)
                await asyncio.sleep(retry_delay)
                retry_delay = min(retry_delay * 2, 2.0)
                ask = True
                continue
            retry_delay = 0.1
            for event in page:
                cursor = event.id
                yield event
            if more:
                ask = False
                continue
            cursor = max(cursor, head)
            timeout = POLL_INTERVAL if self._listener.connected else POLL_INTERVAL_UNLISTENED
            try:
                await asyncio.wait_for(wake.wait(), timeout)
                # Woken by a notification, whose head is in the hint; unless the listener
                # reconnected meanwhile (notifications may have been lost while it was away).
                ask = self._listener.connections != connections
            except TimeoutError:
                ask = True

    async def close(self) -> None:
        # An append under way is answered before the connections go; later ones are refused.
        async with self._appending:
            self._closing = True
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
        await self._listener.close()
        await self._pool.close()
        if self._read_pool is not self._pool:
            await self._read_pool.close()
