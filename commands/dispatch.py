"""The dispatcher: the only place that appends. Decide, append with the expected head, fold.

Concurrent commands are taken in batches: each is decided against the state left by the
ones before it (their events applied speculatively, then taken back), and the whole batch
is appended at once (one transaction: this batching is the log's group commit), expecting
the head the state was folded to. Another process having appended in between is a
ConcurrencyError: catch up, and decide again while holding the log's write lock (so that
a busy log cannot starve the batch). After success the events are folded for real before
any caller resumes, so a caller reads its own write.

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

from commands import (
    apps,
    deployments,
    domains,
    formations,
    jobs,
    keys,
    provenance,
    providers,
    releases,
    routes,
)
from commands.batch import (
    Batch,
    Decided,
    Outcome,
    Pending,
    Replay,
    answer,
    key_conflict,
    recorded_events,
    refused,
    split,
    write_failed,
)
from commands.errors import DomainError, UnavailableError, ValidationError
from commands.types import Command, Handlers, handlers
from domain.actors import Actor
from domain.codec import encode
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import (
    ConcurrencyError,
    EventRefusedError,
    EventStore,
    OutcomeUnknownError,
    StoreError,
    StoreUnavailableError,
    check_event,
)
from projections.idempotency import Idempotency, key_of
from projections.memory import MemoryReadModel
from projections.state import State, apply

logger = logging.getLogger(__name__)

#: Every command's decider (a command type with two is refused at import).
HANDLERS = handlers(
    apps.HANDLERS,
    releases.HANDLERS,
    formations.HANDLERS,
    jobs.HANDLERS,
    deployments.HANDLERS,
    providers.HANDLERS,
    routes.HANDLERS,
    domains.HANDLERS,
    keys.HANDLERS,
)

#: Commands decided and appended together, at most ...
MAX_BATCH = 256
#: ... and bytes of events (one command's at least): a batch is one append, held in memory
#: until it is answered.
MAX_BATCH_BYTES = 32 * 1024 * 1024
#: Seconds stop() waits for retries being answered from the log.
REPLAY_GRACE = 1.0


class Dispatcher:
    def __init__(
        self,
        store: EventStore,
        model: MemoryReadModel,
        handlers: Handlers | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.handlers = HANDLERS if handlers is None else handlers
        self._queue: list[Pending] = []
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
        if self._replays:  # answers read from the log: given a moment, then dropped
            _, late = await asyncio.wait(self._replays, timeout=REPLAY_GRACE)
            for task in late:
                task.cancel()

    async def handle(
        self,
        command: Command,
        idempotency: Idempotency | None = None,
        actor: Actor | None = None,
    ) -> list[RecordedEvent]:
        """Decide and record `command`; returns the events it wrote (maybe none).

        With `idempotency`, a key the log holds already is not decided again: the answer is
        the events that write recorded (ConflictError if it came with another request).
        `actor` (who or what asks) goes into the meta of every event it writes.
        """
        if type(command) not in self.handlers:
            raise TypeError(f"no decider for {type(command).__name__}")
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(command, future, idempotency, actor))
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
                        answer(p, exc)

    # -- deciding --------------------------------------------------------------------------

    def _decide(self, batch: Batch) -> None:
        """Decide the batch's commands in order, within MAX_BATCH_BYTES; the commands left
        over go back to the front of the queue."""
        state = self.model.state
        state.record()
        outcomes: list[Outcome] = []
        size = 0
        in_batch: set[str] = set()
        try:
            for pending in batch.pending:
                if size >= MAX_BATCH_BYTES:
                    break
                outcome = self._decide_one(state, pending, in_batch)
                if isinstance(outcome, Decided):
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

    def _decide_one(self, state: State, pending: Pending, in_batch: set[str]) -> Outcome:
        key = pending.idempotency
        if key is not None:
            known = state.idempotency.get(key.key)
            if known is not None:
                if known.request is not None and known.request != key.request:
                    return key_conflict("was used for a different request", retry=False)
                return Replay(key.key, known)
            if key.key in in_batch:
                return key_conflict("is being used by a request in progress", retry=True)
            in_batch.add(key.key)
        savepoint = state.savepoint()
        try:
            command = pending.command
            events = self.handlers[type(command)](state, command)
            for event in events:
                apply(state, event, command.now)
            encoded = [encode(e) for e in events]
            encoded = provenance.mark(command, events, encoded, key, pending.actor)
            for new in encoded:
                check_event(new)
        except Exception as exc:
            state.rollback(savepoint)
            if isinstance(exc, EventRefusedError):
                return ValidationError("", f"the write is refused: {exc}")
            if not isinstance(exc, DomainError):
                logger.exception("decider failed on %r", pending.command)
            return exc
        return Decided(events, encoded)

    # -- appending -------------------------------------------------------------------------

    async def _process(self, pending: list[Pending]) -> None:
        batch = Batch(pending)
        self._decide(batch)
        try:
            recorded = await self._append(batch)
        except (StoreUnavailableError, OutcomeUnknownError) as exc:
            self._settle(batch, write_failed(exc))
            return
        except StoreError as exc:  # refused, or failed on what one command holds
            if len(batch.pending) > 1:
                # Isolate it: each command decided and appended on its own (the slow path).
                for one in batch.pending:
                    await self._process([one])
                return
            self._settle(batch, refused(exc))
            return
        if recorded:
            # Folded from the events decided, not decoded again from the bytes just encoded,
            # and handed on to the model's followers: with no await since the append
            # returned, so before the log's subscribers in this process hear of them
            # (EventStore.subscribe), and the follower (projections.runner) skips them.
            new, decided = batch.new_events(), batch.decided_events()
            self.model.apply_records(recorded, recorded_events(decided, new, recorded))
        self._settle(batch, None, recorded)

    async def _append(self, batch: Batch) -> list[RecordedEvent]:
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

    async def _append_locked(self, batch: Batch) -> list[RecordedEvent]:
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
        batch: Batch,
        failure: Callable[[Pending], BaseException] | None,
        recorded: list[RecordedEvent] | None = None,
    ) -> None:
        """Answer each command: its error, its replay, or (`failure` or) its events."""
        results = split(batch, recorded or [])
        for pending, outcome, result in zip(batch.pending, batch.outcomes, results, strict=True):
            if isinstance(outcome, Replay):
                task = asyncio.create_task(self._replay(pending, outcome))
                self._replays.add(task)
                task.add_done_callback(self._replays.discard)
            elif isinstance(outcome, BaseException):
                answer(pending, outcome)
            else:
                answer(pending, result if failure is None else failure(pending))

    async def _replay(self, pending: Pending, replay: Replay) -> None:
        """Answer `pending` with the events its key's first write recorded."""
        write = replay.write
        try:
            records = [
                record
                async for record in self.store.read(after=write.first_id - 1, until=write.last_id)
                if key_of(record) == replay.key
            ]
        except StoreUnavailableError as exc:
            answer(pending, UnavailableError(f"{exc}; the write was not answered, retry it"))
            return
        answer(pending, records)
