"""What every handler module needs: the model, the dispatcher, the write's records, lookups."""

from __future__ import annotations

import hashlib
import re
from typing import TypeVar

from aiohttp import web

from commands.errors import NotFoundError, ValidationError
from commands.types import Command
from controller import keys
from controller.actors import actor
from controller.consistency import written
from domain.codec import decode
from domain.events import (
    AppCreated,
    AppUpdated,
    ArtifactCreated,
    Event,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    ResourceCreated,
    ResourceDeleted,
    RouteCreated,
    RouteUpdated,
)
from domain.ids import canonical_uuid
from domain.objects import App
from eventstore.record import RecordedEvent
from projections.apps import find_app
from projections.idempotency import Idempotency
from projections.memory import MemoryReadModel

T = TypeVar("T")
E = TypeVar("E", bound=Event)

#: Events whose payload is their object's Flynn JSON, as the write that recorded it answers.
ObjectEvent = (
    AppCreated
    | AppUpdated
    | ArtifactCreated
    | JobStateChanged
    | ProviderCreated
    | ReleaseCreated
    | ResourceCreated
    | ResourceDeleted
    | RouteCreated
    | RouteUpdated
)


def model(request: web.Request) -> MemoryReadModel:
    return request.app[keys.READ_MODEL]


#: The request header that makes a write idempotent (see README, "Idempotent writes").
IDEMPOTENCY_KEY = "Idempotency-Key"
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,255}")
#: Set once a request's Idempotency-Key went with a command: it goes with one only.
_KEY_USED = web.RequestKey("evenflow_idempotency_key_used", bool)


async def dispatch(
    request: web.Request, command: Command, component: str | None = None
) -> list[RecordedEvent]:
    """Decide and record `command`; its recorded events (for a retry of a write sent with an
    Idempotency-Key, those the first attempt recorded). Its events carry the request's
    actor (with `component`: a consequence that component decided within the request).

    The key goes with the request's first command only: a second one (a clean-up after the
    first failed) is not what the key names.
    """
    idempotency = None
    if not request.get(_KEY_USED):
        idempotency = await request_idempotency(request)
        request[_KEY_USED] = True
    handle = request.app[keys.DISPATCHER].handle
    return written(request, await handle(command, idempotency, actor(request, component)))


async def request_idempotency(request: web.Request) -> Idempotency | None:
    """The request's Idempotency-Key (1 to 255 printable ASCII characters) and what
    identifies the request: method, path and the SHA-256 of its body."""
    values = request.headers.getall(IDEMPOTENCY_KEY, [])
    if not values:
        return None
    if len(values) > 1 or not _PRINTABLE_ASCII.fullmatch(values[0]):
        raise ValidationError(
            IDEMPOTENCY_KEY, "must be one header of 1 to 255 printable ASCII characters"
        )
    body = await request.read()  # read already: aiohttp keeps it
    digest = hashlib.sha256(body).hexdigest()
    return Idempotency(values[0], (request.method, request.path, digest))


# A write answers from the events it recorded, never by reading its object back: by then
# the object may be gone (an app deleted meanwhile, through this process or another one),
# and a retried write gets the records of its first attempt.


def recorded(records: list[RecordedEvent], kind: type[object]) -> RecordedEvent | None:
    """The last of a write's records that holds a `kind` event, if any."""
    name = kind.__name__
    return next((r for r in reversed(records) if r.type == name), None)


def payload(records: list[RecordedEvent], kind: type[ObjectEvent]) -> bytes:
    """The JSON of the object the write recorded: its event's payload, as stored."""
    return found(recorded(records, kind)).data


def event_from(records: list[RecordedEvent], kind: type[E]) -> E:
    """The last `kind` event the write recorded."""
    event = decode(found(recorded(records, kind)))
    if not isinstance(event, kind):
        raise TypeError(f"a {kind.__name__} record decoded as {type(event).__name__}")
    return event


def found(obj: T | None) -> T:
    """`obj`, or Flynn's bare 404 when it is None."""
    if obj is None:
        raise NotFoundError()
    return obj


def path_app(request: web.Request) -> App:
    """The live app named by the `{app}` path segment (id or name), or 404."""
    return found(find_app(model(request).state, request.match_info["app"]))


def path_uuid(request: web.Request, name: str) -> str:
    """A uuid path segment in canonical form; a malformed one is a 404, never a 500."""
    value = canonical_uuid(request.match_info[name].lower())
    if value is None:
        raise NotFoundError()
    return value
