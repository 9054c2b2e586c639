"""What every handler module needs: the clock, new ids, the model, the dispatcher, lookups."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from commands.errors import NotFoundError
from controller import keys
from controller.consistency import written
from eventstore.objects import App
from eventstore.record import RecordedEvent
from projections.memory import MemoryReadModel
from projections.state import canonical_uuid

T = TypeVar("T")


def now() -> datetime:
    """The time a command is decided at; Postgres keeps microseconds, and so do we."""
    return datetime.now(UTC)


#: Random bytes for new ids, drawn from the OS 4 KB at a time: uuid.uuid4() makes one
#: getrandom() call per id, and under load those were 6 % of a POST /apps.
_random = b""
_VARIANT = "89ab"  # RFC 4122: the variant's two high bits are 10


def _forget_random() -> None:
    global _random
    _random = b""  # a forked child must not hand out its parent's ids


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A random (version 4) uuid, as str(uuid.uuid4()) would give."""
    global _random
    if not _random:
        _random = os.urandom(4096)
    h, _random = _random[:16].hex(), _random[16:]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def model(request: web.Request) -> MemoryReadModel:
    return request.app[keys.READ_MODEL]


async def dispatch(request: web.Request, command: Any) -> list[RecordedEvent]:
    return written(request, await request.app[keys.DISPATCHER].handle(command))


def found(obj: T | None) -> T:
    """`obj`, or Flynn's bare 404 when it is None."""
    if obj is None:
        raise NotFoundError()
    return obj


def path_app(request: web.Request) -> App:
    """The live app named by the `{app}` path segment (id or name), or 404."""
    return found(model(request).app(request.match_info["app"]))


def path_uuid(request: web.Request, name: str) -> str:
    """A uuid path segment in canonical form; a malformed one is a 404, never a 500."""
    value = canonical_uuid(request.match_info[name].lower())
    if value is None:
        raise NotFoundError()
    return value
