"""SqlProjector: feeds the log to a SqlReadModel, batch by batch, resuming where it stopped."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

from eventstore.record import RecordedEvent
from eventstore.store import EventStore
from projections.sql import PositionMovedBackError, SqlReadModel, decoded

#: Events applied in one transaction, at most ...
BATCH_SIZE = 5_000
#: ... and bytes of their payloads (one event at least): a batch is held decoded, and the
#: reader reads ahead by two of them.
BATCH_BYTES = 16 * 1024 * 1024


class SqlProjector:
    """Keeps a SqlReadModel current: catch_up() to the log's head, or run() forever.

    The position lives in the database, not here: a restarted projector resumes from it,
    and any number of projectors may follow one log into one database.
    """

    def __init__(
        self,
        store: EventStore,
        model: SqlReadModel,
        *,
        batch_size: int = BATCH_SIZE,
        pace: float = 0.0,
    ) -> None:
        self.store = store
        self.model = model
        self.batch_size = batch_size
        # Seconds to wait after a batch that was not full: the next one gathers what is
        # appended meanwhile, so that a busy log costs a transaction (and a WAL flush) per
        # `pace` seconds rather than per append.
        self.pace = pace
        self.applied = 0  # events this projector applied itself

    async def catch_up(self) -> int:
        """Apply every event the log holds now; returns the position reached."""
        head = await self.store.last_id()
        start = await self.model.last_event_id()
        return await self._follow(lambda after: self.store.read(after=after, until=head), start)

    async def run(self) -> None:
        """Catch up, then apply what is appended, forever."""
        position = await self.catch_up()
        await self._follow(lambda after: self.store.subscribe(after=after), position)

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole log into it; returns the position."""
        await self.model.reset()
        return await self.catch_up()

    async def _follow(
        self, read_after: Callable[[int], AsyncIterator[RecordedEvent]], position: int
    ) -> int:
        """Apply what `read_after(position)` yields until it ends; returns the position.

        If the stored position moved back under us (a reset elsewhere), read again from it.
        """
        while True:
            cursor = position  # the batches cover the log from here on, without holes
            try:
                # Decoding happens in the reader task, while the previous batch is written.
                stream = batches(read_after(cursor), self.batch_size, decoded)
                async with contextlib.aclosing(stream):
                    async for batch in stream:
                        position, applied = await self.model.apply_batch(cursor, batch)
                        self.applied += applied
                        cursor = batch[-1][0].id
                        if self.pace and len(batch) < self.batch_size:
                            await asyncio.sleep(self.pace)
                return position
            except PositionMovedBackError as moved:
                position = moved.position


T = TypeVar("T")


async def batches(
    records: AsyncIterator[RecordedEvent], size: int, convert: Callable[[RecordedEvent], T]
) -> AsyncGenerator[list[T], None]:
    """`convert(record)` of each record, in lists of at most `size`: whatever is ready,
    without waiting for more.

    A reader task keeps fetching and converting while the caller works on the previous
    batch, so reading and decoding the log overlap with writing the tables. (A deque and
    two flags rather than an asyncio.Queue: this runs once per event.)
    """
    ready: collections.deque[tuple[T, int]] = collections.deque()  # (item, payload bytes)
    held = 0  # payload bytes in `ready`
    ended: list[Exception | None] = []  # [None] once the records ran out, [error] if they broke
    has_items, has_room = asyncio.Event(), asyncio.Event()

    async def pump() -> None:
        nonlocal held
        try:
            async for record in records:
                ready.append((convert(record), len(record.data)))
                held += len(record.data)
                has_items.set()
                if len(ready) >= 2 * size or held >= 2 * BATCH_BYTES:
                    has_room.clear()
                    await has_room.wait()
            ended.append(None)
        except Exception as exc:
            ended.append(exc)
        finally:
            has_items.set()
            aclose = getattr(records, "aclose", None)
            if aclose is not None:
                await aclose()

    reader = asyncio.create_task(pump(), name="evenflow-sql-projector-reader")
    try:
        while True:
            while not ready and not ended:
                has_items.clear()
                await has_items.wait()
            if ready:
                batch: list[T] = []
                taken = 0
                while ready and len(batch) < size and (not batch or taken < BATCH_BYTES):
                    item, item_bytes = ready.popleft()
                    batch.append(item)
                    taken += item_bytes
                held -= taken
                has_room.set()
                yield batch
            elif ended[0] is not None:
                raise ended[0]
            else:
                return
    finally:
        reader.cancel()
        # wait(), not await: it does not raise the reader's CancelledError, so ours (if
        # we are being cancelled) is the only one that propagates.
        await asyncio.wait([reader])
