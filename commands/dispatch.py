"""The dispatcher: the only place that appends. Decide, append with the expected head, fold.

Concurrent commands are taken in batches: each is decided against the state left by the
ones before it (their events applied speculatively, then taken back), and the whole batch
is appended at once, expecting the head the state was folded to. Another process having
appended in between is a ConcurrencyError: catch up, and decide again while holding the
log's write lock (so that a busy log cannot starve the batch). After success the events
are folded for real before any caller resumes, so a caller reads its own write.

One command's fault never fails the others: events that break the log's limits are
refused while deciding (that command alone gets a 400), and a batch the log refuses
anyway is appended again command by command. An append whose outcome the store cannot
tell is answered as such, never as "not written". A command sent with an Idempotency-Key
that the fold already holds is not decided again: it is answered with the events the
first attempt recorded (see projections/idempotency.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import attrs

from commands import apps, deployments, domains, formations, jobs, providers, releases, routes
from commands.errors import ConflictError, DomainError, UnavailableError, ValidationError
from eventstore.codec import encode
from eventstore.events import Event
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import (
    ConcurrencyError,
    EventRefusedError,
    EventStore,
    IdempotencyKeyTakenError,
    OutcomeUnknownError,
    StoreError,
    StoreUnavailableError,
    check_event,
)
from projections.idempotency import RETENTION, Idempotency, KeyedWrite, key_of
from projections.memory import MemoryReadModel
from projections.state import State, apply

logger = logging.getLogger(__name__)

Decider = Callable[[State, Any], list[Event]]

HANDLERS: dict[type, Decider] = {
    **apps.HANDLERS,
    **releases.HANDLERS,
    **formations.HANDLERS,
    **jobs.HANDLERS,
    **deployments.HANDLERS,
    **providers.HANDLERS,
    **routes.HANDLERS,
    **domains.HANDLERS,
}

#: Commands decided and appended together, at most ...
MAX_BATCH = 256
#: ... and bytes of events (one command's at least): a batch is one append, held in memory
#: until it is answered.
MAX_BATCH_BYTES = 32 * 1024 * 1024


@attrs.define
class _Pending:
    command: Any
    future: asyncio.Future[list[RecordedEvent]]
    idempotency: Idempotency | None = None


@attrs.frozen
class _Decided:
    """A command's events, and their encoded form for the log."""

    events: list[Event]
    encoded: list[NewEvent]


@attrs.frozen
class _Replay:
    """A command whose Idempotency-Key the log holds: answered with that write's events."""

    key: str
    write: KeyedWrite


_Outcome = _Decided | _Replay | BaseException


@attrs.define
class _Batch:
    """The commands of one append and what was decided for each (index by index)."""

    pending: list[_Pending]
    outcomes: list[_Outcome] = attrs.field(factory=list)

    def new_events(self) -> list[NewEvent]:
        return [e for o in self.outcomes if isinstance(o, _Decided) for e in o.encoded]

    def decided_events(self) -> list[Event]:
        return [e for o in self.outcomes if isinstance(o, _Decided) for e in o.events]


class Dispatcher:
    def __init__(
        self,
        store: EventStore,
        model: MemoryReadModel,
        handlers: dict[type, Decider] | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.handlers = HANDLERS if handlers is None else handlers
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._replays: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="evenflow-dispatcher")

    async def stop(self) -> None:
        """Finish the commands already queued, then stop."""
        while self._queue:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._replays:
            await asyncio.wait(self._replays)

    async def handle(
        self, command: Any, idempotency: Idempotency | None = None
    ) -> list[RecordedEvent]:
        """Decide and record `command`; returns the events it wrote (maybe none).

        With `idempotency`, a key the log holds already is not decided again: the answer is
        the events that write recorded (ConflictError if it came with another request).
        """
        if type(command) not in self.handlers:
            raise TypeError(f"no decider for {type(command).__name__}")
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(command, future, idempotency))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                pending, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                pending = [p for p in pending if not p.future.done()]  # callers gone before
                try:
                    await self._process(pending)
                except Exception as exc:  # a bug must not leave callers waiting forever
                    logger.exception("dispatcher failed on a batch")
                    for p in pending:
                        _answer(p, exc)

    # -- deciding --------------------------------------------------------------------------

    def _decide(self, batch: _Batch) -> None:
        """Decide the batch's commands in order, within MAX_BATCH_BYTES; the commands left
        over go back to the front of the queue."""
        state = self.model.state
        state.record()
        outcomes: list[_Outcome] = []
        size = 0
        in_batch: set[str] = set()
        try:
            for pending in batch.pending:
                if size >= MAX_BATCH_BYTES:
                    break
                outcome = self._decide_one(state, pending, in_batch)
                if isinstance(outcome, _Decided):
                    size += sum(len(e.data) for e in outcome.encoded)
                outcomes.append(outcome)
        finally:
            state.rollback()
            state.stop_recording()
        left = batch.pending[len(outcomes) :]
        if left:
            self._queue[0:0] = left
            self._wake.set()
        batch.pending, batch.outcomes = batch.pending[: len(outcomes)], outcomes

    def _decide_one(self, state: State, pending: _Pending, in_batch: set[str]) -> _Outcome:
        key = pending.idempotency
        if key is not None:
            known = state.idempotency.get(key.key)
            if known is not None:
                if known.request is not None and known.request != key.request:
                    return _key_conflict("was used for a different request", retry=False)
                return _Replay(key.key, known)
            if key.key in in_batch:
                return _key_conflict("is being used by a request in progress", retry=True)
            in_batch.add(key.key)
        savepoint = state.savepoint()
        try:
            command = pending.command
            events = self.handlers[type(command)](state, command)
            for event in events:
                apply(state, event, command.now)
            encoded = [encode(e) for e in events]
            if key is not None and encoded:
                encoded = key.mark(encoded)
            for new in encoded:
                check_event(new)
        except Exception as exc:
            state.rollback(savepoint)
            if isinstance(exc, EventRefusedError):
                return ValidationError("", f"the write is refused: {exc}")
            if not isinstance(exc, DomainError):
                logger.exception("decider failed on %r", pending.command)
            return exc
        return _Decided(events, encoded)

    # -- appending -------------------------------------------------------------------------

    async def _process(self, pending: list[_Pending]) -> None:
        batch = _Batch(pending)
        self._decide(batch)
        try:
            recorded = await self._append(batch)
        except (StoreUnavailableError, OutcomeUnknownError) as exc:
            self._settle(batch, _write_failed(exc))
            return
        except StoreError as exc:  # refused, or failed on what one command holds
            if len(batch.pending) > 1:
                # Isolate it: each command decided and appended on its own (the slow path).
                for one in batch.pending:
                    await self._process([one])
                return
            self._settle(batch, _refused(exc))
            return
        if recorded:
            # Folded from the events decided, not decoded again from the bytes just encoded.
            new, decided = batch.new_events(), batch.decided_events()
            self.model.apply_records(recorded, _recorded_events(decided, new, recorded))
        self._settle(batch, None, recorded)

    async def _append(self, batch: _Batch) -> list[RecordedEvent]:
        new = batch.new_events()
        if not new:
            return []
        try:
            return await self.store.append(new, expected_last_id=self.model.last_id)
        except ConcurrencyError:
            # Another process wrote since our fold. Deciding again on a fresh fold and
            # retrying optimistically can lose the race again and again while the others
            # keep writing, so decide under the log's write lock instead: one more round
            # trip or two, and certain to land.
            await self.model.catch_up(self.store)
            return await self._append_locked(batch)

    async def _append_locked(self, batch: _Batch) -> list[RecordedEvent]:
        """Fold what others wrote and decide the batch again, holding the log's write lock."""

        def decide(others: list[RecordedEvent]) -> list[NewEvent]:
            self.model.apply_records(others)
            self._decide(batch)
            return batch.new_events()

        _, recorded = await self.store.append_after(self.model.last_id, decide)
        return recorded

    # -- answering -------------------------------------------------------------------------

    def _settle(
        self,
        batch: _Batch,
        failure: Callable[[_Pending], BaseException] | None,
        recorded: list[RecordedEvent] | None = None,
    ) -> None:
        """Answer each command: its error, its replay, or (`failure` or) its events."""
        results = _split(batch, recorded or [])
        for pending, outcome, result in zip(batch.pending, batch.outcomes, results, strict=True):
            if isinstance(outcome, _Replay):
                task = asyncio.create_task(self._replay(pending, outcome))
                self._replays.add(task)
                task.add_done_callback(self._replays.discard)
            elif isinstance(outcome, BaseException):
                _answer(pending, outcome)
            else:
                _answer(pending, result if failure is None else failure(pending))

    async def _replay(self, pending: _Pending, replay: _Replay) -> None:
        """Answer `pending` with the events its key's first write recorded."""
        write = replay.write
        try:
            records = [
                record
                async for record in self.store.read(after=write.first_id - 1, until=write.last_id)
                if key_of(record) == replay.key
            ]
        except StoreUnavailableError as exc:
            _answer(pending, UnavailableError(f"{exc}; the write was not answered, retry it"))
            return
        _answer(pending, records)


def _key_conflict(what: str, *, retry: bool) -> ConflictError:
    return ConflictError(
        f"the Idempotency-Key {what}", detail={"field": "Idempotency-Key"}, retry=retry
    )


def _write_failed(exc: StoreError) -> Callable[[_Pending], BaseException]:
    """The answer to each command of an append that failed with `exc`."""

    def answer(pending: _Pending) -> BaseException:
        if isinstance(exc, OutcomeUnknownError):
            # The write may commit yet: a blind retry could apply it twice. With a key, a
            # retry is safe (it is answered with the first attempt's events if it landed).
            return UnavailableError(
                f"the database did not answer in time ({exc}); the write may have been "
                "committed: retry it with the same Idempotency-Key, or check before retrying",
                retry=pending.idempotency is not None,
            )
        # Actionable (Flynn #3809 answered a failover with "Something went wrong").
        return UnavailableError(f"{exc}; the write was not acknowledged, retry it")

    return answer


def _refused(exc: StoreError) -> Callable[[_Pending], BaseException]:
    """The answer to the one command of an append the log refused with `exc`."""

    def answer(pending: _Pending) -> BaseException:
        if isinstance(exc, IdempotencyKeyTakenError):
            hours = int(RETENTION.total_seconds() // 3600)
            return _key_conflict(
                f"was used by a write more than {hours} hours ago; send a new key", retry=False
            )
        if isinstance(exc, EventRefusedError):
            return ValidationError("", f"the write is refused: {exc}")
        return exc

    return answer


def _split(batch: _Batch, recorded: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    """Each command's recorded events: the store skips duplicate unique ids, nothing else."""
    results: list[list[RecordedEvent]] = []
    position = 0
    for outcome in batch.outcomes:
        mine: list[RecordedEvent] = []
        if isinstance(outcome, _Decided):
            for event in outcome.encoded:
                if position < len(recorded) and _same(recorded[position], event):
                    mine.append(recorded[position])
                    position += 1
        results.append(mine)
    return results


def _recorded_events(
    decided: list[Event], new: list[NewEvent], recorded: list[RecordedEvent]
) -> list[Event]:
    """The decided event of each recorded one (the store skips duplicate unique ids)."""
    events = []
    position = 0
    for event, encoded in zip(decided, new, strict=True):
        if position < len(recorded) and _same(recorded[position], encoded):
            events.append(event)
            position += 1
    return events


def _same(record: RecordedEvent, event: NewEvent) -> bool:
    return (record.type, record.object_id, record.unique_id) == (
        event.type,
        event.object_id,
        event.unique_id,
    )


def _answer(pending: _Pending, result: list[RecordedEvent] | BaseException) -> None:
    if pending.future.done():
        return
    if isinstance(result, BaseException):
        pending.future.set_exception(result)
    else:
        pending.future.set_result(result)
