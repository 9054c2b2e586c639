"""The dashboard's reads besides Flynn's API: the apps at a glance, and the time machine
(the platform or an app at a point of the log, and what changed between two points)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import orjson
from aiohttp import web

from commands.errors import ForbiddenError, NotFoundError, ValidationError
from controller import keys
from controller.errors import error_document, error_response
from controller.handlers.common import model
from controller.handlers.events import query_int
from controller.http import json_response
from controller.keys import PRINCIPAL
from domain.timefmt import parse_time
from projections.overview import overview
from replay.changes import compare
from replay.checkpoints import Checkpoints, FoldPending, TooFarError
from replay.fold import Rebuilt
from replay.views import resolve_app, state_document

CHECKPOINTS = web.AppKey("checkpoints", Checkpoints)


async def history_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the log): the time machine's checkpoints, kept while it serves."""
    app[CHECKPOINTS] = Checkpoints(app[keys.STORE])
    yield


async def apps(request: web.Request) -> web.Response:
    """GET /dashboard/apps: the apps the key sees."""
    return json_response(orjson.dumps(overview(model(request).state, request[PRINCIPAL].apps)))


def _limited_to(request: web.Request) -> str | None:
    """The ?app= of the request; for a key limited to some apps, which must name one (the
    whole platform's past is not such a key's to see): else a 403."""
    app_ref = request.query.get("app") or None
    principal = request[PRINCIPAL]
    if principal.apps is not None and app_ref is None:
        raise ForbiddenError(
            f"the key {principal.name!r} is limited to some apps: name one of them with ?app="
        )
    return app_ref


def _check_app(request: web.Request, app_ref: str | None, *points: Rebuilt) -> None:
    """For a key limited to some apps: the app `app_ref` names at the first of `points`
    where it names one must be one of them (else a 403, whether or not it exists)."""
    principal = request[PRINCIPAL]
    if principal.apps is None or app_ref is None:
        return
    for rebuilt in points:
        found = resolve_app(rebuilt.model.state, app_ref)
        if found is not None:
            if found.id in principal.apps:
                return
            break
    raise ForbiddenError(f"the key {principal.name!r} may not see the app {app_ref!r}")


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
    app_ref = _limited_to(request)
    try:
        rebuilt = await _fold(request, *await _point(request))
    except _Pending as pending:
        return _pending(pending.reached)
    _check_app(request, app_ref, rebuilt)
    try:
        doc = await state_document(rebuilt, app_ref)
    except LookupError:
        raise NotFoundError() from None
    return json_response(orjson.dumps(doc))


async def changes(request: web.Request) -> web.Response:
    """GET /dashboard/history/changes?at_from=N|at_from_time=T&at=M|at_time=T[&app=REF]."""
    app_ref = _limited_to(request)
    try:
        before = await _fold(request, *await _point(request, "_from", 0))
        after = await _fold(request, *await _point(request))
    except _Pending as pending:
        return _pending(pending.reached)
    if before.last_event_id > after.last_event_id:
        raise ValidationError("at_from", "is after the point it is compared with")
    _check_app(request, app_ref, after, before)
    store, hidden = request.app[keys.STORE], request[PRINCIPAL].hidden_types
    try:
        return json_response(orjson.dumps(await compare(store, before, after, app_ref, hidden)))
    except LookupError:
        raise NotFoundError() from None
