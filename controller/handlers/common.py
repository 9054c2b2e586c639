"""What every handler module needs: the clock, new ids, the model, the dispatcher, lookups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from commands.errors import NotFoundError
from controller import keys
from eventstore.objects import App
from eventstore.record import RecordedEvent
from projections.memory import MemoryReadModel
from projections.state import canonical_uuid


def now() -> datetime:
    """The time a command is decided at; Postgres keeps microseconds, and so do we."""
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def model(request: web.Request) -> MemoryReadModel:
    return request.app[keys.READ_MODEL]


async def dispatch(request: web.Request, command: Any) -> list[RecordedEvent]:
    return await request.app[keys.DISPATCHER].handle(command)


def found(obj: Any) -> Any:
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
