"""What a command is, what decides one, and the table from each command type to its decider."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from domain.events import Event
from projections.state import State


class Command(Protocol):
    """A request to change the log: a frozen value holding everything its decider needs,
    down to the moment it is decided at (the time its events are folded with)."""

    @property
    def now(self) -> datetime: ...


C = TypeVar("C", bound=Command)
#: A pure function from the state and a command to the command's events (or an error).
Decider = Callable[[State, C], list[Event]]
#: Each command type's decider; `handler` keeps each entry's two halves of one type.
Handlers = dict[type[Command], Decider[Any]]


def handler(kind: type[C], decider: Decider[C]) -> Handlers:
    """A table of one entry: `decider` decides the commands of type `kind`."""
    return {kind: decider}


def handlers(*tables: Handlers) -> Handlers:
    """The tables as one. A command type in two of them has two deciders, and which one
    would run depends on the order of a merge: refused, when the tables are built."""
    merged: Handlers = {}
    for table in tables:
        for kind, decider in table.items():
            if kind in merged:
                raise ValueError(f"{kind.__name__} is registered twice")
            merged[kind] = decider
    return merged
