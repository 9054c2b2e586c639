"""Flynn's order of lists: newest first (`ORDER BY created_at DESC`), ties broken by id."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar


class Dated(Protocol):
    """An object with an id and the time it was created (every listed kind but formations)."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


D = TypeVar("D", bound=Dated)

_CREATED = operator.attrgetter("created_at", "id")


def newest_first(objects: Iterable[D]) -> list[D]:
    """By created_at, then by id, both descending: the same order whatever the input's."""
    return sorted(objects, key=_CREATED, reverse=True)
