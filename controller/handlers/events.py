"""The event log over HTTP: GET /events (a JSON list, or a stream) and GET /events/{id}."""

from __future__ import annotations

from aiohttp import web

from commands.errors import NotFoundError, ValidationError
from controller import keys, visibility
from controller.broadcast import BROADCASTER
from controller.handlers.common import found, model
from controller.http import json_response
from controller.sse import open_stream, resume_position
from domain.codec import envelope
from eventstore.record import EventFilter
from projections.apps import find_app_or_deleted

#: Largest id or count a query may name (Postgres bigint).
MAX_INT = 2**63 - 1


def query_int(request: web.Request, name: str, minimum: int = 0) -> int | None:
    """An integer query parameter; malformed -> 400 "<name> is invalid" (Flynn's wording)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(name, "is invalid") from None
    if not minimum <= value <= MAX_INT:
        raise ValidationError(name, "is invalid")
    return value


def event_filter(request: web.Request) -> EventFilter:
    """app_id (id or name; an unknown app is a 404), object_types, object_id."""
    app_ref = request.query.get("app_id")
    app_id = None
    if app_ref:  # a deleted app's history stays readable by id
        app_id = found(find_app_or_deleted(model(request).state, app_ref)).id
    types = tuple(t for t in request.query.get("object_types", "").split(",") if t)
    object_id = request.query.get("object_id") or None
    # PostgreSQL text cannot hold NUL: a query with one would fail in the database (a 500).
    for name, value in (("object_types", ",".join(types)), ("object_id", object_id or "")):
        if "\x00" in value:
            raise ValidationError(name, "is invalid")
    # What the key may see: its apps' events, and the keys' own events to admins only.
    asked = EventFilter(app_id=app_id, object_types=types, object_id=object_id)
    return visibility.event_filter(request, asked)


async def events(request: web.Request) -> web.StreamResponse:
    # Flynn: a list only when Accept is exactly application/json; anything else streams.
    if request.headers.get("Accept") == "application/json":
        return await list_events(request)
    return await stream_events(request, event_filter(request))


async def stream_events(request: web.Request, filter: EventFilter) -> web.StreamResponse:
    """The stream: the replayed history (past, count, Last-Event-Id), then live events."""
    after = await start_position(request, filter)
    response = await open_stream(request)
    await request.app[BROADCASTER].serve(response, after, filter, request.transport)
    return response


async def start_position(request: web.Request, filter: EventFilter) -> int:
    """The id after which the stream starts, fixed before any byte is sent.

    Flynn (controller/events.go): history is replayed when past=true or Last-Event-Id > 0,
    from after Last-Event-Id (default 0), limited to the `count` most recent events; without
    either, only live events. Anything committed after the head read here is streamed.
    """
    count = query_int(request, "count")
    resume = resume_position(request)
    past = request.query.get("past") == "true"
    head = await request.app[keys.STORE].last_id()
    if not (past or resume):
        return head
    since = resume or 0
    if not count:
        return since
    recent = request.app[keys.STORE].read_backward(
        since_id=since, before_id=head + 1, count=count, filter=filter
    )
    start = head
    async for record in recent:  # newest first: the last one is the oldest to replay
        start = record.id - 1
    return start


async def list_events(request: web.Request) -> web.Response:
    filter = event_filter(request)
    before_id = query_int(request, "before_id")
    since_id = query_int(request, "since_id")
    count = query_int(request, "count")
    # Recent events come from the event streams' window, encoded once, as every other GET
    # comes from the read model: no database round trip (figures: bench/README.md).
    body = request.app[BROADCASTER].listing_body(filter, before_id, since_id, count)
    if body is None:
        records = request.app[keys.STORE].read_backward(
            before_id=before_id, since_id=since_id, count=count, filter=filter
        )
        body = b"[" + b",".join([envelope(r) async for r in records]) + b"]"
    return json_response(body)


async def get_event(request: web.Request) -> web.Response:
    try:
        event_id = int(request.match_info["id"])
    except ValueError:
        raise NotFoundError() from None  # Flynn answers a 500 here
    record = await request.app[keys.STORE].get(event_id) if 0 < event_id <= MAX_INT else None
    if record is None or not visibility.sees_event(request, record):
        raise NotFoundError()
    return json_response(envelope(record))
