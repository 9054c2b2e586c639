"""One subscription to the log per process, fanned out to every event-stream client.

The broadcaster follows the log and keeps a bounded window of the most recent events, each
encoded once, when first asked for: its envelope (Flynn's event JSON), and its SSE frame made
of it (a process with no client and no listing encodes nothing: every worker folds every
event, most of them serve no stream). In the service it follows the read model's fold (the
model hands it every batch it folds, the dispatcher's own appends at once, see
MemoryReadModel.add_follower), and the window starts filled with the log's tail; on its
own (`Broadcaster(store)`) it subscribes to the store from the head at start-up. The window
also answers `GET /events` listings that it covers (`listing`), with the envelopes it keeps.

A client is a `Subscription`: a cursor (every event up to it has been served or did
not match) and a filter. A client whose cursor lies inside the window is served from memory;
one behind the window (a slow reader, or one replaying history) reads the log from the store
page by page until it reaches the window again. No client has a buffer of its own and none
is dropped for being slow, and because the window and the store hold the same immutable,
ordered log, every client gets every matching event once, in id order.

A fan-out writes straight to each waiting client's transport (sse.TransportWriter), a slice
of clients per turn of the event loop; a client's own task runs only to catch up, to drain
a backed-up connection, or for a keep-alive.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from aiohttp import web

from controller import keys, sse
from domain.codec import envelope
from eventstore.record import EventFilter, RecordedEvent
from eventstore.store import EventStore, StoreUnavailableError
from projections.memory import Folded, MemoryReadModel

logger = logging.getLogger(__name__)

#: The window holds at most this many events, and this many bytes of frames, envelopes and
#: the payloads they were made of (the window keeps each event's record too; see _size).
WINDOW_EVENTS = 20_000
WINDOW_BYTES = 32 * 1024 * 1024
#: Events per write to one client (a client far behind inside the window catches up in steps).
WRITE_EVENTS = 512
#: ... and about this many bytes (one frame at least): what a stalled client can hold here.
WRITE_BYTES = 256 * 1024
#: Events per store read while a client catches up from behind the window.
CATCH_UP_PAGE = 1_000
#: Bytes of frames gathered before a write while catching up.
CATCH_UP_WRITE_BYTES = 256 * 1024
#: Seconds before a client catching up reads again when the log is unavailable.
CATCH_UP_RETRY = 0.5
#: Listing bodies kept (see Broadcaster.listing_body), and their bytes at most: a listing
#: can be as large as the window, and a larger one is built every time instead.
LISTINGS_KEPT = 64
LISTINGS_BYTES = 8 * 1024 * 1024
#: Events of the log's tail put into the window at start-up: enough for recent listings
#: and replays, little memory and start-up time (the window fills up as the log moves).
PREFILL_EVENTS = 2_000
#: Seconds streams get to end by themselves at shutdown before they are cancelled.
SHUTDOWN_GRACE = 1.0
#: Clients served per turn of the event loop during a fan-out.
FLUSH_SLICE = 64

Write = Callable[[bytes], Awaitable[None]]


class Subscription:
    """One client: how far it has been served, what it wants, and how it waits."""

    __slots__ = ("_timer", "_waiter", "cursor", "deadline", "direct", "filter", "keepalive", "task")

    def __init__(
        self, cursor: int, filter: EventFilter, direct: sse.TransportWriter | None = None
    ) -> None:
        self.cursor = cursor
        self.filter = filter
        self.direct = direct
        self.keepalive = sse.keepalive_seconds()
        self.deadline = 0.0  # loop time at which a keep-alive is due
        self.task: asyncio.Task[object] | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def wake(self, news: bool = True) -> None:
        """End the current wait: True for news (or shutdown), False for a keep-alive."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(news)


class Broadcaster:
    """The window of recent frames, the clients, and the task that follows the log."""

    def __init__(
        self,
        store: EventStore,
        *,
        window_events: int = WINDOW_EVENTS,
        window_bytes: int = WINDOW_BYTES,
        model: MemoryReadModel | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.window_events = window_events
        self.window_bytes = window_bytes
        # The window: parallel lists; entries before _start are evicted (compacted lazily).
        self._ids: list[int] = []
        self._records: list[RecordedEvent] = []
        self._envelopes: list[bytes | None] = []  # None until first asked for
        self._frames: list[bytes | None] = []  # each made of its envelope (sse.data_frame)
        self._start = 0
        self._bytes = 0
        self._evicted = 0  # bytes of the entries before _start, still held until compacted
        self.head = 0  # the newest event seen; everything up to it is committed and final
        self.floor = 0  # every event with floor < id <= head is in the window
        self.failure: BaseException | None = None
        self.catch_ups = 0  # times a client read the store after falling behind the window
        self._closed = False
        self._flush_scheduled = False
        self._serving: list[Subscription] = []  # the clients the current fan-out has left
        self._stale = False  # news arrived since the current fan-out began
        self._waiting: set[Subscription] = set()
        self._clients: set[Subscription] = set()
        # Listing bodies by query, for the head they were built at (see listing_body).
        self._bodies: dict[tuple[object, ...], tuple[int, bytes]] = {}
        self._bodies_bytes = 0
        self._task: asyncio.Task[None] | None = None

    def lag(self) -> tuple[int, int]:
        """The clients, and how far behind the head the furthest behind is (in event ids),
        for the metrics."""
        clients = list(self._clients)
        behind = max((self.head - sub.cursor for sub in clients), default=0)
        return len(clients), max(behind, 0)

    # -- following the log ---------------------------------------------------------------

    async def start(self) -> None:
        """Fix the starting head and follow the log from there."""
        if self.model is None:
            self.head = self.floor = await self.store.last_id()
            self._task = asyncio.create_task(self._follow(), name="evenflow-broadcaster")
            return
        # No await between reading the model's position and following it: nothing is missed.
        self.head = self.floor = self.model.last_id
        self.model.add_follower(self)
        await self._prefill()

    async def _prefill(self) -> None:
        """Put the log's tail (up to the starting head) into the window: listings and
        replays of recent history are then served from memory from the start."""
        head, wanted = self.floor, min(self.window_events, PREFILL_EVENTS)
        if head == 0 or wanted <= 0:
            return
        try:
            newest = [r async for r in self.store.read_backward(before_id=head + 1, count=wanted)]
        except StoreUnavailableError as exc:
            logger.warning("event stream window starts empty: %s", exc)
            return
        if not newest or newest[0].id != head:
            return  # not the log the model folded (cannot happen): leave the window empty
        newest.reverse()
        at = self._start  # everything in the window so far came after `head`
        self._ids[at:at] = [record.id for record in newest]
        self._records[at:at] = newest
        self._envelopes[at:at] = [None] * len(newest)
        self._frames[at:at] = [None] * len(newest)
        self._bytes += sum(_size(record) for record in newest)
        self.floor = 0 if len(newest) < wanted else newest[0].id - 1
        self._evict()

    # -- as a follower of the read model (projections.memory.Follower) --------------------

    wants_changes = 0  # it streams records: what they changed is none of its business

    def applied(self, folded: Folded) -> None:
        # The model hands on every event in order, failed follower or not: once it moves
        # again (its follower started anew), streams may too; those that ended resume
        # from their Last-Event-Id.
        self.failure = None
        for record, _ in folded.pairs:
            self._add(record)

    def failed(self, error: BaseException) -> None:
        logger.error("the event stream lost the log: %r", error)
        self.failure = error
        self._wake_all()

    async def _follow(self) -> None:
        try:
            async for record in self.store.subscribe(after=self.head):
                self._add(record)
        except Exception as exc:
            logger.exception("the event stream broadcaster failed")
            self.failure = exc
            raise
        finally:
            # Whether it failed, was stopped or the store closed: no more news will come.
            self._closed = self._closed or self.failure is None
            self._wake_all()

    def _add(self, record: RecordedEvent) -> None:
        self._ids.append(record.id)
        self._records.append(record)
        self._envelopes.append(None)
        self._frames.append(None)
        self._bytes += _size(record)
        self.head = record.id
        self._evict()
        # Records of one page arrive without a pause: serve the clients once for all of them.
        # A fan-out in progress starts over with every waiting client when it ends.
        self._stale = True
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _evict(self) -> None:
        """Drop the oldest events beyond the window's bounds."""
        while len(self._ids) - self._start > self.window_events or self._bytes > self.window_bytes:
            start = self._start
            self.floor = self._ids[start]
            size = _size(self._records[start])
            self._bytes -= size
            self._evicted += size
            self._start += 1
        # Evicted entries are let go of in bulk (cheaper than one at a time), and soon enough
        # that they never hold more than a quarter of the window's bytes.
        if (
            self._start > max(1024, self.window_events // 2)
            or self._evicted > self.window_bytes // 4
        ):
            start = self._start
            del self._ids[:start], self._records[:start]
            del self._envelopes[:start], self._frames[:start]
            self._start = 0
            self._evicted = 0

    def _flush(self) -> None:
        """Serve the waiting clients that have news, a slice per turn of the event loop.

        Between slices the loop reads its sockets, so that a fan-out to thousands of
        clients does not hold up the next event's database round trips.
        """
        loop = asyncio.get_running_loop()
        if not self._serving:
            self._serving, self._stale = list(self._waiting), False
        now = loop.time()
        for _ in range(min(FLUSH_SLICE, len(self._serving))):
            sub = self._serving.pop()
            if sub._waiter is not None:  # still waiting: nothing else is writing to it
                self._serve_waiting(sub, now)
        if self._serving or self._stale:  # more clients, or news since the pass began
            loop.call_soon(self._flush)
        else:
            self._flush_scheduled = False

    def _serve_waiting(self, sub: Subscription, now: float) -> None:
        """Write a waiting client's news, wake it, or move its cursor past what it skips."""
        if sub.cursor >= self.head:
            return
        if sub.cursor < self.floor:
            sub.wake()  # behind the window: its task reads the store
        elif not (sub.filter.is_all or self._any_match(sub)):
            sub.cursor = self.head
        elif sub.direct is None or not sub.direct.has_room():
            sub.wake()
        else:
            chunk = self.collect(sub)
            if chunk:
                sub.direct.write(chunk)
                sub.deadline = now + sub.keepalive
            if sub.cursor < self.head:  # more than one write's worth: its task goes on
                sub.wake()

    def _any_match(self, sub: Subscription) -> bool:
        i = bisect.bisect_right(self._ids, sub.cursor, self._start)
        matches = sub.filter.matches
        return any(matches(record) for record in self._records[i:])

    def _wake_all(self) -> None:
        for sub in list(self._waiting):
            sub.wake()

    # -- listings ------------------------------------------------------------------------

    def listing(
        self,
        filter: EventFilter,
        before_id: int | None = None,
        since_id: int | None = None,
        count: int | None = None,
    ) -> list[bytes] | None:
        """The envelopes store.read_backward would give (newest first), from the window;
        None when the window does not hold all of them (the caller reads the store)."""
        if self.failure is not None or self.model is None:
            return None  # only a window that moves with the read model is current enough
        if count == 0:
            return []
        since = since_id or 0
        ids, records, start = self._ids, self._records, self._start
        i = len(ids) if before_id is None else bisect.bisect_left(ids, before_id, start)
        matches = None if filter.is_all else filter.matches
        found: list[int] = []
        while i > start:
            i -= 1
            if ids[i] <= since:
                break
            if matches is None or matches(records[i]):
                found.append(i)
                if len(found) == count:
                    break
        else:
            if since < self.floor:
                return None  # older events may match: they are in the store only
        return [self._envelope(n) for n in found]

    def listing_body(
        self,
        filter: EventFilter,
        before_id: int | None = None,
        since_id: int | None = None,
        count: int | None = None,
    ) -> bytes | None:
        """`listing` as a JSON array, kept until the log moves: dashboards poll the same
        query, and building a 100-event body cost as much as sending it."""
        key = (filter, before_id, since_id, count)
        cached = self._bodies.get(key)
        if cached is not None and cached[0] == self.head and self.failure is None:
            return cached[1]
        envelopes = self.listing(filter, before_id, since_id, count)
        if envelopes is None:
            return None
        body = b"[" + b",".join(envelopes) + b"]"
        if len(self._bodies) >= LISTINGS_KEPT or self._bodies_bytes + len(body) > LISTINGS_BYTES:
            self._bodies.clear()
            self._bodies_bytes = 0
        if len(body) <= LISTINGS_BYTES:
            self._bodies[key] = (self.head, body)
            self._bodies_bytes += len(body)
        return body

    # -- serving one client --------------------------------------------------------------

    def collect(self, sub: Subscription, limit: int = WRITE_EVENTS) -> bytes | None:
        """The frames after the client's cursor, from the window, advancing the cursor.

        None when the cursor is behind the window: the client must read the store.
        """
        if sub.cursor < self.floor:
            return None
        ids = self._ids
        i = bisect.bisect_right(ids, sub.cursor, self._start)
        end = min(len(ids), i + limit)
        if i >= end:
            sub.cursor = max(sub.cursor, self.head)
            return b""
        chunk = self._chunk(sub, i, end)
        if len(chunk) > WRITE_BYTES and end - i > 1:
            # Large frames: fewer per write, so that a client that stopped reading holds
            # about WRITE_BYTES in the service, not WRITE_EVENTS large frames.
            end = self._end_within_bytes(i, end)
            chunk = self._chunk(sub, i, end)
        sub.cursor = ids[end - 1]
        return chunk

    def _chunk(self, sub: Subscription, i: int, end: int) -> bytes:
        frames = self._frames_between(i, end)
        if sub.filter.is_all:
            return b"".join(frames)
        matches = sub.filter.matches
        pairs = zip(self._records[i:end], frames, strict=True)
        return b"".join([frame for record, frame in pairs if matches(record)])

    def _frames_between(self, i: int, end: int) -> list[bytes]:
        """The frames of window entries i..end-1, made where not made yet."""
        frames = self._frames[i:end]
        if None in frames:  # a C-speed scan: after the first client they are all made
            return [self._frame(n) for n in range(i, end)]
        return cast("list[bytes]", frames)

    def _frame(self, n: int) -> bytes:
        frame = self._frames[n]
        if frame is None:
            frame = self._frames[n] = sse.data_frame(self._envelope(n), self._ids[n])
        return frame

    def _envelope(self, n: int) -> bytes:
        encoded = self._envelopes[n]
        if encoded is None:
            encoded = self._envelopes[n] = envelope(self._records[n])
        return encoded

    def _end_within_bytes(self, i: int, end: int) -> int:
        """The end of the longest run of frames from `i` (one at least) within WRITE_BYTES."""
        size = 0
        for n in range(i, end):
            size += len(self._frame(n))
            if size > WRITE_BYTES and n > i:
                return n
        return end

    async def catch_up(self, sub: Subscription, write: Write) -> bool:
        """Serve the client from the store, up to the head seen now; True if it wrote."""
        self.catch_ups += 1
        target = self.head
        frames: list[bytes] = []
        size, wrote = 0, False
        records = self.store.read(
            after=sub.cursor, until=target, filter=sub.filter, page_size=CATCH_UP_PAGE
        )
        async with contextlib.aclosing(records):  # type: ignore[type-var, unused-ignore]
            async for record in records:
                frame = sse.event_frame(record)
                frames.append(frame)
                size += len(frame)
                if size >= CATCH_UP_WRITE_BYTES:
                    await write(b"".join(frames))
                    frames, size, wrote = [], 0, True
                    if self._closed:
                        return wrote
        if frames:
            await write(b"".join(frames))
            wrote = True
        sub.cursor = max(sub.cursor, target)
        return wrote

    async def serve(
        self,
        response: web.StreamResponse,
        after: int,
        filter: EventFilter,
        transport: asyncio.Transport | None = None,
    ) -> None:
        """Stream every event after `after` that matches `filter`, until shutdown.

        With the request's `transport`, the broadcaster writes to it directly while the
        client waits (see sse.TransportWriter).
        """
        direct = None if transport is None else sse.TransportWriter(transport, response.chunked)
        sub = Subscription(after, filter, direct)
        sub.task = asyncio.current_task()
        self._clients.add(sub)
        try:
            await self._deliver(sub, response.write)
        except ConnectionError:
            pass  # the client went away
        finally:
            self._clients.discard(sub)
            if sub._timer is not None:
                sub._timer.cancel()

    async def _deliver(self, sub: Subscription, write: Write) -> None:
        loop = asyncio.get_running_loop()
        keepalive = sub.keepalive
        sub.deadline = loop.time() + keepalive
        while True:
            if self.failure is not None:
                await write(sse.error_frame(f"stream failed: {self.failure}"))
                return
            if self._closed:
                return
            chunk = self.collect(sub)
            if chunk is None:
                try:
                    wrote = await self.catch_up(sub, write)
                except StoreUnavailableError as exc:
                    # Transient: the client keeps its place and reads again (no reconnect storm).
                    logger.warning("event stream catch-up at %d waits: %s", sub.cursor, exc)
                    await asyncio.sleep(CATCH_UP_RETRY)
                    continue
                except ConnectionError:
                    raise
                except Exception as exc:
                    if not self._closed:
                        logger.exception("event stream catch-up failed")
                        await write(sse.error_frame(f"stream failed: {exc}"))
                    return
            else:
                wrote = bool(chunk)
                if wrote:
                    await write(chunk)
            if wrote:
                sub.deadline = loop.time() + keepalive
            # Served up to the head: wait for news (no second look at the window needed).
            if sub.cursor >= self.head and not await self._wait(sub, loop):
                await write(sse.KEEPALIVE_FRAME)
                sub.deadline = loop.time() + keepalive

    async def _wait(self, sub: Subscription, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait for news (True) or until a keep-alive is due (False)."""
        if loop.time() >= sub.deadline:
            return False
        sub._waiter = loop.create_future()
        self._waiting.add(sub)
        if sub._timer is None:
            sub._timer = loop.call_at(sub.deadline, self._keepalive_due, sub)
        try:
            return await sub._waiter
        finally:
            self._waiting.discard(sub)
            sub._waiter = None

    def _keepalive_due(self, sub: Subscription) -> None:
        # One timer per client, re-armed only when it fires: writes just move the deadline.
        sub._timer = None
        if sub._waiter is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= sub.deadline:
            sub.wake(news=False)
        else:
            sub._timer = loop.call_at(sub.deadline, self._keepalive_due, sub)

    # -- shutting down -------------------------------------------------------------------

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """End every stream: waiting ones at once, busy ones after `grace` seconds."""
        self._closed = True
        self._wake_all()
        tasks = [sub.task for sub in self._clients if sub.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:  # stuck writing to a client that does not read
                task.cancel()

    async def stop(self) -> None:
        if self.model is not None:
            self.model.remove_follower(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


#: Bytes of an envelope and its frame beyond the payload, the object's type and id and the
#: metadata: the keys, the event id, the app id, the time, the frame's lines.
_FRAMING = 256


def _size(record: RecordedEvent) -> int:
    """The bytes an event may hold in the window, from above: its payload, and an envelope
    and a frame each carrying it (known before they are made: the bound holds whether or
    not they are)."""
    named = len(record.object_type) + len(record.object_id)
    meta = len(record.meta) if record.meta is not None else 0
    return 3 * len(record.data) + 2 * (named + meta + _FRAMING)


BROADCASTER = web.AppKey("broadcaster", Broadcaster)


async def broadcast_context(app: web.Application) -> AsyncIterator[None]:
    """Follow the read model's log for the event streams; stop at cleanup.

    A failure of the model's subscription ends the streams with an error frame, until the
    model moves again (its follower is started anew: service/tasks.py); the read model's
    own health entry reports it.
    """
    broadcaster = Broadcaster(app[keys.STORE], model=app[keys.READ_MODEL])
    await broadcaster.start()
    app[BROADCASTER] = broadcaster
    yield
    await broadcaster.close(grace=0)
    await broadcaster.stop()


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every open stream, so that a graceful shutdown is prompt."""
    sse.end_streams(app)
    broadcaster = app.get(BROADCASTER)
    if broadcaster is not None:
        await broadcaster.close()
