"""The commands of one append: what was decided for each, and how each is answered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import attrs

from commands.errors import ConflictError, UnavailableError, ValidationError
from commands.types import Command
from domain.actors import Actor
from domain.events import Event
from eventstore.record import NewEvent, RecordedEvent
from eventstore.store import (
    EventRefusedError,
    IdempotencyKeyTakenError,
    OutcomeUnknownError,
    StoreError,
)
from projections.idempotency import RETENTION, Idempotency, KeyedWrite


@attrs.define
class Pending:
    """A command waiting for its answer, the Idempotency-Key it came with, and its actor."""

    command: Command
    future: asyncio.Future[list[RecordedEvent]]
    idempotency: Idempotency | None = None
    actor: Actor | None = None


@attrs.frozen
class Decided:
    """A command's events, and their encoded form for the log."""

    events: list[Event]
    encoded: list[NewEvent]


@attrs.frozen
class Replay:
    """A command whose Idempotency-Key the log holds: answered with that write's events."""

    key: str
    write: KeyedWrite


Outcome = Decided | Replay | BaseException


@attrs.define
class Batch:
    """The commands of one append and what was decided for each (index by index)."""

    pending: list[Pending]
    outcomes: list[Outcome] = attrs.field(factory=list)

    def new_events(self) -> list[NewEvent]:
        return [e for o in self.outcomes if isinstance(o, Decided) for e in o.encoded]

    def decided_events(self) -> list[Event]:
        return [e for o in self.outcomes if isinstance(o, Decided) for e in o.events]


def key_conflict(what: str, *, retry: bool) -> ConflictError:
    return ConflictError(
        f"the Idempotency-Key {what}", detail={"field": "Idempotency-Key"}, retry=retry
    )


def write_failed(exc: StoreError) -> Callable[[Pending], BaseException]:
    """The answer to each command of an append that failed with `exc`."""

    def reply(pending: Pending) -> BaseException:
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

    return reply


def refused(exc: StoreError) -> Callable[[Pending], BaseException]:
    """The answer to the one command of an append the log refused with `exc`."""

    def reply(pending: Pending) -> BaseException:
        if isinstance(exc, IdempotencyKeyTakenError):
            hours = int(RETENTION.total_seconds() // 3600)
            return key_conflict(
                f"was used by a write more than {hours} hours ago; send a new key", retry=False
            )
        if isinstance(exc, EventRefusedError):
            return ValidationError("", f"the write is refused: {exc}")
        return exc

    return reply


def split(batch: Batch, recorded: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    """Each command's recorded events: the store skips duplicate unique ids, nothing else."""
    results: list[list[RecordedEvent]] = []
    position = 0
    for outcome in batch.outcomes:
        mine: list[RecordedEvent] = []
        if isinstance(outcome, Decided):
            for event in outcome.encoded:
                if position < len(recorded) and same(recorded[position], event):
                    mine.append(recorded[position])
                    position += 1
        results.append(mine)
    return results


def recorded_events(
    decided: list[Event], new: list[NewEvent], recorded: list[RecordedEvent]
) -> list[Event]:
    """The decided event of each recorded one (the store skips duplicate unique ids)."""
    events = []
    position = 0
    for event, encoded in zip(decided, new, strict=True):
        if position < len(recorded) and same(recorded[position], encoded):
            events.append(event)
            position += 1
    return events


def same(record: RecordedEvent, event: NewEvent) -> bool:
    return (record.type, record.object_id, record.unique_id) == (
        event.type,
        event.object_id,
        event.unique_id,
    )


def answer(pending: Pending, result: list[RecordedEvent] | BaseException) -> None:
    if pending.future.done():
        return
    if isinstance(result, BaseException):
        pending.future.set_exception(result)
    else:
        pending.future.set_result(result)
