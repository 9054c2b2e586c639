"""Read-your-writes across workers and nodes: catch up with the log before "not found".

Each process answers from its own fold of the log, which follows what other processes
append a few milliseconds late. So that no acknowledged write is ever invisible to a later
request, whichever process answers it:

* a request whose handler finds nothing (NotFoundError) is run once more after the fold has
  caught up with the log's head as of the moment the request arrived — when the fold moved;
* a request naming an app by anything but the id of an app the fold holds (a name can be
  taken again by a new app once its app is deleted) is answered after that catch-up;
* a request may carry `Evenflow-Event-Id: N`, a position in the log it has seen: it is
  answered from a fold that holds event N, waiting at most CONSISTENCY_TIMEOUT (then a
  503 to retry);
* every answer carries `Evenflow-Event-Id`: for a write, the id of the last event it
  recorded; otherwise the position of the fold it was answered from.

A request that finds what it looks for by id costs no round trip to the database. Provider
names need no catch-up: providers are never deleted, so a name found stays right.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from aiohttp import web

from commands.errors import NotFoundError, ValidationError
from controller import keys
from controller.endpoints import Handler
from controller.errors import error_document
from domain.ids import canonical_uuid
from eventstore.record import RecordedEvent
from eventstore.store import EventStore, StoreUnavailableError
from projections.memory import MemoryReadModel

#: The token's header, the same both ways: an answer names the position it was answered
#: from, and a request sends back the largest it has seen, unchanged.
HEADER = "Evenflow-Event-Id"
#: Seconds a client is told to wait before retrying an answer the fold was too late for.
RETRY_AFTER = "1"
_MAX_ID = 2**63 - 1
#: Seconds the follower, woken by the log's notification, gets to fold a position before a
#: waiting request reads the log itself.
FOLLOWER_GRACE = 0.1


class LogHead:
    """The log's head as of a moment after the caller asked.

    Callers that ask while no query is about to be sent share the next one: it is sent
    after all of them asked, so it sees every event committed before any of them asked.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._next: asyncio.Future[int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def now(self) -> int:
        future = self._next
        if future is None:
            future = self._next = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._ask(future), name="evenflow-log-head")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(future)

    async def _ask(self, future: asyncio.Future[int]) -> None:
        self._next = None  # who asks from now on needs a query sent after they asked
        try:
            head = await self._store.last_id()
        except Exception as exc:
            future.set_exception(exc)
            future.add_done_callback(_retrieved)  # its askers may all have given up
        else:
            future.set_result(head)
        finally:
            if not future.done():  # cancelled at shutdown: nobody waits forever
                future.cancel()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _retrieved(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()


class FoldLagging(Exception):
    """The fold did not reach a position in time: the answer would not be current."""

    def __init__(self, wanted: int, folded: int) -> None:
        super().__init__(wanted, folded)
        self.wanted = wanted
        self.folded = folded


class Consistency:
    """What a process needs to answer from a fold at least as new as a position."""

    def __init__(
        self, store: EventStore, model: MemoryReadModel, head: LogHead, timeout: float
    ) -> None:
        self.store = store
        self.model = model
        self.head = head
        self.timeout = timeout
        self._folding: asyncio.Task[int] | None = None

    async def catch_up(self) -> bool:
        """Fold the log up to its head as of now; False when the log cannot tell its head
        (then the answer comes from the fold as it is, as every read does meanwhile).

        Raises FoldLagging when the fold does not get there within the timeout.
        """
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                head = await self.head.now()
        except (StoreUnavailableError, TimeoutError):
            return False
        await self._reach(head, deadline)
        return True

    async def reach(self, wanted: int) -> None:
        """Fold up to event `wanted` (a client's token); a 400 if the log holds no such id."""
        if self.model.last_id >= wanted:
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                head = await self.head.now()
        except (StoreUnavailableError, TimeoutError):
            head = wanted  # cannot check it: wait for it
        if head < wanted:
            raise ValidationError(HEADER, f"is beyond the log's newest event ({head})")
        await self._reach(wanted, deadline)

    async def _reach(self, position: int, deadline: float) -> None:
        loop, model = asyncio.get_running_loop(), self.model
        if await model.reached(position, max(min(FOLLOWER_GRACE, deadline - loop.time()), 0.0)):
            return
        # The follower has not heard of it (no notification comes through a pooler in
        # transaction mode, or it was lost): read the log here.
        with contextlib.suppress(StoreUnavailableError, TimeoutError):
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(self._fold())
        if not await model.reached(position, max(deadline - loop.time(), 0.0)):
            raise FoldLagging(position, model.last_id)

    def _fold(self) -> asyncio.Task[int]:
        """One read of the log into the fold at a time, shared by every request waiting."""
        if self._folding is None or self._folding.done():
            self._folding = asyncio.create_task(self.model.catch_up(self.store))
            self._folding.add_done_callback(_retrieved)
        return self._folding

    async def close(self) -> None:
        await self.head.close()
        if self._folding is not None:
            self._folding.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._folding


CONSISTENCY = web.AppKey("consistency", Consistency)


async def consistency_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the read side); what it started stops at cleanup."""
    store = app[keys.STORE]
    keeper = Consistency(
        store, app[keys.READ_MODEL], LogHead(store), app[keys.SETTINGS].consistency_timeout
    )
    app[CONSISTENCY] = keeper
    yield
    await keeper.close()


async def consistently(
    request: web.Request,
    handler: Handler,
    names_app: Literal["path", "query"] | None,
    keeper: Consistency,
) -> web.StreamResponse:
    """Answer from a fold that holds every write acknowledged before the request came
    (`names_app`: where the request's route names an app, see controller/endpoints.py)."""
    request[keys.WRITTEN] = 0  # this request's answer gets the header
    try:
        token = request.headers.get(HEADER)
        caught_up = False
        if token is not None:
            await keeper.reach(_position(token))
        if names_app is not None and _names_an_unknown_app(request, names_app, keeper.model):
            caught_up = await keeper.catch_up()
        folded = keeper.model.last_id
        try:
            return await handler(request)
        except NotFoundError:
            # Safe to run again: handlers look objects up before any outside call or write,
            # an object a decider found gone stays gone (a second run stops at its lookup),
            # and aiohttp keeps the body read the first time.
            if caught_up or not await keeper.catch_up() or keeper.model.last_id == folded:
                raise  # the fold was current: not found it is
            return await handler(request)
    except FoldLagging as lag:
        return lagging(lag)


def _position(raw: str) -> int:
    """The token a request sends: a log position (a non-negative integer), else a 400."""
    value = raw.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or int(value) > _MAX_ID:
        raise ValidationError(HEADER, "is invalid")
    return int(value)


def _names_an_unknown_app(
    request: web.Request, where: Literal["path", "query"], model: MemoryReadModel
) -> bool:
    """Whether the request refers to an app other than by the id of one the fold holds:
    a name, which may have moved to a newer app, or an id the fold has not seen yet."""
    if where == "path":
        ref = request.match_info["app"]
    elif request.query_string:
        ref = request.query.get("app_id", "")
    else:
        return False
    apps = model.state.apps
    return bool(ref) and ref not in apps and canonical_uuid(ref) not in apps


def lagging(lag: FoldLagging) -> web.Response:
    """The 503 for an answer the fold could not be brought up to date for in time."""
    body = error_document(
        "service_unavailable",
        f"this controller has folded the log up to event {lag.folded}, not yet up to "
        f"{lag.wanted}; retry",
        retry=True,
    )
    return web.Response(
        status=503,
        body=body,
        content_type="application/json",
        headers={"Retry-After": RETRY_AFTER},
    )


def written(request: web.Request, recorded: list[RecordedEvent]) -> list[RecordedEvent]:
    """Remember the last event a write recorded, for its answer's header; returns `recorded`."""
    if recorded:
        request[keys.WRITTEN] = recorded[-1].id
    return recorded
