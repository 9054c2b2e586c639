"""GET /audit: who did what, and when (replay/audit.py), newest first, a page at a time;
filtered by actor, app and time, and to what the key may see (its apps; the keys' own
events to admins only)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from commands.errors import ValidationError
from controller import keys, visibility
from controller.handlers.common import found, model
from controller.handlers.events import query_int
from controller.http import encode_json, json_response
from domain.timefmt import parse_time
from eventstore.record import EventFilter
from projections.apps import find_app_or_deleted
from replay.audit import AuditQuery, audit_page

#: Entries of a page unless `count` says otherwise, and at most.
DEFAULT_COUNT = 100
MAX_COUNT = 1000


async def audit(request: web.Request) -> web.Response:
    query = _query(request)
    visible = visibility.event_filter(request, EventFilter(app_id=query.app_id))
    count = query_int(request, "count", minimum=1) or DEFAULT_COUNT
    if count > MAX_COUNT:
        raise ValidationError("count", f"is more than {MAX_COUNT}")
    before_id = query_int(request, "before_id")
    entries, next_before = await audit_page(
        request.app[keys.STORE], query, visible, before_id, count
    )
    return json_response(encode_json({"entries": entries, "next_before_id": next_before}))


def _query(request: web.Request) -> AuditQuery:
    app_ref = request.query.get("app_id")
    app_id = None
    if app_ref:  # a deleted app's audit stays readable by id
        app_id = found(find_app_or_deleted(model(request).state, app_ref)).id
    return AuditQuery(
        actor=request.query.get("actor") or None,
        app_id=app_id,
        since=_time(request, "since"),
        until=_time(request, "until"),
    )


def _time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ValidationError(name, "must be an RFC 3339 time") from None
