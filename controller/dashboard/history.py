"""The dashboard's reads besides Flynn's API: the apps at a glance, and the time machine
(the platform or an app at a point of the log, and what changed between two points)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import orjson
from aiohttp import web

from commands.errors import NotFoundError, ValidationError
from controller import keys
from controller.errors import error_document, error_response
from controller.handlers.common import model
from controller.handlers.events import query_int
from controller.http import json_response
from domain.timefmt import parse_time
from projections.overview import overview
from replay.changes import compare
from replay.checkpoints import Checkpoints, FoldPending, TooFarError
from replay.fold import Rebuilt
from replay.views import state_document

CHECKPOINTS = web.AppKey("checkpoints", Checkpoints)


async def history_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the log): the time machine's checkpoints, kept while it serves."""
    app[CHECKPOINTS] = Checkpoints(app[keys.STORE])
    yield


async def apps(request: web.Request) -> web.Response:
    return json_response(orjson.dumps(overview(model(request).state)))


async def _point(
    request: web.Request, suffix: str = "", default: int | None = None
) -> tuple[int | None, datetime | None]:
    """A point of the log from ?at{suffix}= (an event id) or ?at{suffix}_time= (RFC 3339);
    neither: `default`, else the log's head."""
    at = query_int(request, f"at{suffix}")
    raw = request.query.get(f"at{suffix}_time")
    at_time = None
    if raw:
        try:
            at_time = parse_time(raw)
        except ValueError:
            raise ValidationError(f"at{suffix}_time", "is not an RFC 3339 time") from None
    head = await request.app[keys.STORE].last_id()
    if at is not None and at > head:
        raise ValidationError(f"at{suffix}", f"is beyond the log's newest event ({head})")
    if at is None and at_time is None:
        return (head if default is None else default), None
    return at, at_time


async def _fold(request: web.Request, until: int | None, at_time: datetime | None) -> Rebuilt:
    try:
        return await request.app[CHECKPOINTS].fold(until=until, at_time=at_time)
    except FoldPending as pending:
        raise _Pending(pending.reached) from None
    except TooFarError as error:
        raise ValidationError("at", str(error)) from None


class _Pending(Exception):
    def __init__(self, reached: int) -> None:
        self.reached = reached


def _pending(reached: int) -> web.Response:
    message = f"the time machine has folded the log up to event {reached} so far; retry"
    return error_response(503, error_document("service_unavailable", message, retry=True))


async def state(request: web.Request) -> web.Response:
    """GET /dashboard/history/state?at=N|at_time=T[&app=REF]."""
    try:
        rebuilt = await _fold(request, *await _point(request))
    except _Pending as pending:
        return _pending(pending.reached)
    try:
        doc = await state_document(rebuilt, request.query.get("app") or None)
    except LookupError:
        raise NotFoundError() from None
    return json_response(orjson.dumps(doc))


async def changes(request: web.Request) -> web.Response:
    """GET /dashboard/history/changes?at_from=N|at_from_time=T&at=M|at_time=T[&app=REF]."""
    try:
        before = await _fold(request, *await _point(request, "_from", 0))
        after = await _fold(request, *await _point(request))
    except _Pending as pending:
        return _pending(pending.reached)
    if before.last_event_id > after.last_event_id:
        raise ValidationError("at_from", "is after the point it is compared with")
    store, app_ref = request.app[keys.STORE], request.query.get("app") or None
    try:
        return json_response(orjson.dumps(await compare(store, before, after, app_ref)))
    except LookupError:
        raise NotFoundError() from None
