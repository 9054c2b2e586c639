"""The dispatcher: the only place that appends. Decide, append with the expected head, fold.

Concurrent commands are taken in batches: each is decided against the state left by the
ones before it (their events applied speculatively, then taken back), and the whole batch
is appended at once, expecting the head the state was folded to. Another process having
appended in between is a ConcurrencyError: catch up, and decide again while holding the
log's write lock (so that a busy log cannot starve the batch). After success the events
are folded for real before any caller resumes, so a caller reads its own write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import attrs

from commands import apps, deployments, domains, formations, jobs, providers, releases, routes
from commands.errors import DomainError, UnavailableError
from eventstore.codec import encode
from eventstore.events import Event
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import ConcurrencyError, EventStore, StoreUnavailableError
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

#: Commands decided and appended together, at most.
MAX_BATCH = 256


@attrs.define
class _Pending:
    command: Any
    future: asyncio.Future[list[RecordedEvent]]


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

    async def handle(self, command: Any) -> list[RecordedEvent]:
        """Decide and record `command`; returns the events it wrote (maybe none)."""
        if type(command) not in self.handlers:
            raise TypeError(f"no decider for {type(command).__name__}")
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(command, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                batch = [p for p in batch if not p.future.done()]  # callers gone before start
                try:
                    await self._process(batch)
                except Exception as exc:  # a bug must not leave callers waiting forever
                    logger.exception("dispatcher failed on a batch")
                    _settle(batch, exc)

    def _decide(self, batch: list[_Pending]) -> list[list[Event] | BaseException]:
        state = self.model.state
        state.record()
        outcomes: list[list[Event] | BaseException] = []
        try:
            for pending in batch:
                savepoint = state.savepoint()
                try:
                    events = self.handlers[type(pending.command)](state, pending.command)
                    for event in events:
                        apply(state, event, pending.command.now)
                except Exception as exc:
                    state.rollback(savepoint)
                    if not isinstance(exc, DomainError):
                        logger.exception("decider failed on %r", pending.command)
                    outcomes.append(exc)
                    continue
                outcomes.append(events)
        finally:
            state.rollback()
            state.stop_recording()
        return outcomes

    async def _process(self, batch: list[_Pending]) -> None:
        outcomes = self._decide(batch)
        decided, new = _encoded(outcomes)
        if not new:
            _settle(batch, [o if isinstance(o, BaseException) else [] for o in outcomes])
            return
        try:
            try:
                recorded = await self.store.append(new, expected_last_id=self.model.last_id)
            except ConcurrencyError:
                # Another process wrote since our fold. Deciding again on a fresh fold and
                # retrying optimistically can lose the race again and again while the others
                # keep writing, so decide under the log's write lock instead: one more round
                # trip or two, and certain to land.
                await self.model.catch_up(self.store)
                outcomes, decided, new, recorded = await self._process_locked(batch)
        except StoreUnavailableError as exc:
            # Actionable (Flynn #3809 answered a failover with "Something went wrong").
            error = UnavailableError(f"{exc}; the write was not acknowledged, retry it")
            _settle(batch, [o if isinstance(o, BaseException) else error for o in outcomes])
            return
        # Folded from the events decided, not decoded again from the bytes just encoded.
        self.model.apply_records(recorded, _recorded_events(decided, new, recorded))
        _settle(batch, _split(outcomes, new, recorded))

    async def _process_locked(self, batch: list[_Pending]) -> tuple[
        list[list[Event] | BaseException], list[Event], list[NewEvent], list[RecordedEvent]
    ]:  # fmt: skip
        """Fold what others wrote and decide the batch again, holding the log's write lock."""
        outcomes: list[list[Event] | BaseException] = []
        decided: list[Event] = []
        new: list[NewEvent] = []

        def decide(others: list[RecordedEvent]) -> list[NewEvent]:
            nonlocal outcomes, decided, new
            self.model.apply_records(others)
            outcomes = self._decide(batch)
            decided, new = _encoded(outcomes)
            return new

        _, recorded = await self.store.append_after(self.model.last_id, decide)
        return outcomes, decided, new, recorded


def _encoded(outcomes: list[list[Event] | BaseException]) -> tuple[list[Event], list[NewEvent]]:
    """The events decided, and their encoded form for the log."""
    decided = [e for o in outcomes if isinstance(o, list) for e in o]
    return decided, [encode(e) for e in decided]


def _split(
    outcomes: list[list[Event] | BaseException], new: list[NewEvent], recorded: list[RecordedEvent]
) -> list[list[RecordedEvent] | BaseException]:
    """Each command's recorded events: the store skips duplicate unique ids, nothing else."""
    results: list[list[RecordedEvent] | BaseException] = []
    position = 0
    index = 0
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            results.append(outcome)
            continue
        mine = []
        for _ in outcome:
            event = new[index]
            index += 1
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


def _settle(
    batch: list[_Pending],
    outcome: list[list[RecordedEvent] | BaseException] | list[Any] | BaseException,
) -> None:
    outcomes = outcome if isinstance(outcome, list) else [outcome] * len(batch)
    for pending, result in zip(batch, outcomes, strict=True):
        if pending.future.done():
            continue
        if isinstance(result, BaseException):
            pending.future.set_exception(result)
        else:
            pending.future.set_result(result)
