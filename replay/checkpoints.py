"""The fold of the log up to any point, from the nearest of a few checkpoints kept in memory.

The dashboard's time machine asks what the platform looked like at an event or a moment.
Folding from the log's start for every question would cost time in proportion to the log,
so the folded state is pickled every `every` events as a fold goes past (in this process's
memory only: pickles are never read from anywhere else), and a question is folded forward
from the nearest checkpoint at or before its point. When the checkpoints outgrow their
byte budget every other one is dropped and the spacing doubles: they go on covering the
whole log, more sparsely.

One fold runs at a time (each may take a core for a while); it yields to the event loop
between batches, so the service keeps answering meanwhile. A fold goes at most `max_fold`
events past its checkpoint: a point farther away is answered by `FoldPending` after a
checkpoint was kept where the fold stopped (the next question starts there), or by
`TooFarError` when no checkpoint could be kept (a state too large for the budget).
"""

from __future__ import annotations

import asyncio
import bisect
import pickle
from datetime import datetime

import attrs

from eventstore.record import RecordedEvent
from eventstore.store import LogReader
from projections.memory import MemoryReadModel, collector_paused
from replay.fold import Rebuilt

#: Events folded between two yields to the event loop.
BATCH = 1_000
#: Events between two checkpoints, at first (the spacing doubles as the log grows).
EVERY = 5_000
#: Bytes of pickled states kept at most.
MAX_BYTES = 64 * 1024 * 1024
#: Events one question may fold past its checkpoint.
MAX_FOLD = 200_000


class FoldPending(Exception):
    """The point lies farther than one fold goes: the work done is kept, ask again."""

    def __init__(self, reached: int) -> None:
        super().__init__(reached)
        self.reached = reached


class TooFarError(Exception):
    """The point lies farther than one fold goes, and no checkpoint can bring it closer."""


@attrs.frozen
class Checkpoint:
    """The state after every event up to `last_id` (committed at `last_at`), pickled."""

    last_id: int
    last_at: datetime | None
    state: bytes


_START = Checkpoint(0, None, b"")


class Checkpoints:
    """Folds to a point of `source`'s log, and the checkpoints kept on the way."""

    def __init__(
        self,
        source: LogReader,
        *,
        every: int = EVERY,
        max_bytes: int = MAX_BYTES,
        max_fold: int = MAX_FOLD,
    ) -> None:
        self.source = source
        self.every = every
        self.max_bytes = max_bytes
        self.max_fold = max_fold
        self._kept: list[Checkpoint] = []  # ascending by last_id
        self._lock = asyncio.Lock()

    @property
    def kept(self) -> list[Checkpoint]:
        return list(self._kept)

    @property
    def kept_bytes(self) -> int:
        return sum(len(point.state) for point in self._kept)

    async def fold(self, *, until: int | None = None, at_time: datetime | None = None) -> Rebuilt:
        """The read model after every event up to `until` and committed at or before
        `at_time` (either may be None: no bound). Raises FoldPending or TooFarError."""
        async with self._lock:
            start = self._nearest(until, at_time)
            model = _restore(start)
            last_at = start.last_at
            saved = start.last_id
            batch: list[RecordedEvent] = []
            async for record in self.source.read(after=start.last_id, until=until):
                if at_time is not None and record.created_at > at_time:
                    break
                batch.append(record)
                if len(batch) >= BATCH:
                    last_at, saved = self._apply(model, batch, saved)
                    batch = []
                    if model.last_id - start.last_id >= self.max_fold:
                        raise self._stopped(model.last_id, start)
                    await asyncio.sleep(0)
            if batch:
                last_at, _ = self._apply(model, batch, saved)
            return Rebuilt(model, last_at)

    def _nearest(self, until: int | None, at_time: datetime | None) -> Checkpoint:
        ids = [point.last_id for point in self._kept]
        n = bisect.bisect_right(ids, until) if until is not None else len(ids)
        for point in reversed(self._kept[:n]):
            if at_time is None or (point.last_at is not None and point.last_at <= at_time):
                return point
        return _START

    def _apply(
        self, model: MemoryReadModel, batch: list[RecordedEvent], saved: int
    ) -> tuple[datetime, int]:
        with collector_paused():
            model.apply_records(batch)
        if model.last_id - saved >= self.every:
            self._keep(model, batch[-1].created_at)
            saved = model.last_id
        return batch[-1].created_at, saved

    def _keep(self, model: MemoryReadModel, last_at: datetime) -> bool:
        """Keep a checkpoint of `model`; False when it does not fit the budget."""
        if any(point.last_id == model.last_id for point in self._kept):
            return True
        state = pickle.dumps(model.state, protocol=pickle.HIGHEST_PROTOCOL)
        if len(state) > self.max_bytes // 2:
            return False
        ids = [point.last_id for point in self._kept]
        self._kept.insert(
            bisect.bisect(ids, model.last_id), Checkpoint(model.last_id, last_at, state)
        )
        while self.kept_bytes > self.max_bytes:
            # Thin out evenly, keeping the newest (the one just made may be it).
            self._kept = self._kept[len(self._kept) % 2 :: 2]
            self.every *= 2
        return True

    def _stopped(self, reached: int, start: Checkpoint) -> Exception:
        """What a fold that went as far as it may says."""
        if reached > start.last_id and any(p.last_id > start.last_id for p in self._kept):
            return FoldPending(reached)
        return TooFarError(
            f"the point is more than {self.max_fold} events past the nearest state this "
            f"service keeps (event {start.last_id}); use `evenflow replay state`"
        )


def _restore(point: Checkpoint) -> MemoryReadModel:
    model = MemoryReadModel()
    if point.state:
        model.state = pickle.loads(point.state)  # pickled by this process only (see _keep)
        model.last_id = point.last_id
    return model
