"""Formations: PUT/GET/DELETE /apps/{app}/formations/{release}, GET /apps/{app}/formations,
GET /formations (active ones, or the scheduler's stream) (Flynn: controller/formation.go)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from aiohttp import web

from commands.errors import ValidationError
from commands.formations import DeleteFormation, PutFormation
from controller.consistency import CONSISTENCY
from controller.handlers.common import (
    dispatch,
    event_from,
    found,
    model,
    path_app,
    path_uuid,
    recorded,
)
from controller.http import empty_response, encode_json, json_response, read_json
from controller.sse import data_frame, open_stream, pump
from controller.visibility import limited_to, visible_release
from domain.clock import now
from domain.events import FormationScaled
from domain.objects import JSON, Formation
from domain.timefmt import parse_time
from eventstore.record import RecordedEvent
from projections.formations import (
    SENTINEL,
    FormationKey,
    active_formations,
    app_formations,
    changed_formations,
    expanded,
    formation,
    formations_since,
    streamed,
)
from projections.memory import MemoryReadModel
from projections.state import State


def _json_list(docs: list[JSON | None]) -> bytes:
    return encode_json([doc for doc in docs if doc is not None])


async def put_formation(request: web.Request) -> web.Response:
    doc = await read_json(request)
    app, release_id = path_app(request), path_uuid(request, "release")
    visible_release(request, model(request).state, release_id)
    command = PutFormation.from_json(doc, app=app.id, release_id=release_id, now=now())
    records = await dispatch(request, command)
    return json_response(encode_json(_as_put(model(request).state, records).to_json()))


def _as_put(state: State, records: list[RecordedEvent]) -> Formation:
    """The formation as its `scale` event left it. The event has no created_at: the fold's
    is kept by later changes (a deletion of the app too), unless the formation was deleted
    and put again since; that one's is newer than the event, which then gives its own time."""
    event = event_from(records, FormationScaled)
    at = found(recorded(records, FormationScaled)).created_at
    current = state.formations.get((event.app, event.release))
    created_at = current.created_at if current is not None and current.created_at <= at else at
    return Formation(event.app, event.release, created_at, at, dict(event.processes or {}))


async def get_formation(request: web.Request) -> web.Response:
    app, release_id = path_app(request), path_uuid(request, "release")
    state = model(request).state
    live = found(formation(state, app.id, release_id))
    doc = expanded(state, live) if request.query.get("expand") == "true" else live.to_json()
    return json_response(encode_json(found(doc)))


async def list_app_formations(request: web.Request) -> web.Response:
    formations = app_formations(model(request).state, path_app(request).id)
    return json_response(encode_json([f.to_json() for f in formations]))


async def delete_formation(request: web.Request) -> web.Response:
    app, release_id = path_app(request), path_uuid(request, "release")
    await dispatch(request, DeleteFormation(app.id, release_id, now()))
    return empty_response()


async def formations(request: web.Request) -> web.StreamResponse:
    # Flynn: any Accept that mentions the stream type streams; otherwise only ?active=true.
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await stream_formations(request)
    if request.query.get("active") != "true":
        raise ValidationError("", "must either request a stream or only active formations")
    state, apps = model(request).state, limited_to(request)
    active = [f for f in active_formations(state) if apps is None or f.app_id in apps]
    return json_response(_json_list([expanded(state, f) for f in active]))


def _since(request: web.Request) -> datetime:
    try:
        return parse_time(request.query.get("since", ""))
    except ValueError:
        raise ValidationError("since", "must be an RFC 3339 time") from None


async def stream_formations(request: web.Request) -> web.StreamResponse:
    since, read_model = _since(request), model(request)
    # The backlog comes from a fold that holds every write acknowledged before the request.
    await request.app[CONSISTENCY].catch_up()
    # Backlog and starting point are taken together, before the headers go out and with no
    # await in between: a change folded after this is sent live, one folded before is in the
    # backlog (or older than `since`), and none is sent twice.
    seen: dict[FormationKey, Formation] = dict(read_model.state.formations)
    generation, apps = read_model.generation, limited_to(request)
    since_then = formations_since(read_model.state, since)
    backlog = [_frame(read_model, f) for f in since_then if apps is None or f.app_id in apps]
    response = await open_stream(request)
    frames = [*backlog, data_frame(encode_json(SENTINEL))]
    await pump(response, _frames(read_model, frames, seen, generation, apps))
    return response


def _frame(read_model: MemoryReadModel, formation: Formation) -> bytes:
    return data_frame(encode_json(streamed(read_model.state, formation)))


async def _frames(
    read_model: MemoryReadModel,
    backlog: list[bytes],
    seen: dict[FormationKey, Formation],
    generation: int,
    apps: frozenset[str] | None,
) -> AsyncIterator[bytes]:
    for frame in backlog:
        yield frame
    while True:
        # A batch folded while frames were being written is caught by the generation check.
        if read_model.generation == generation:
            await read_model.changed()
        generation = read_model.generation
        changed = changed_formations(read_model.state, seen)
        for frame in [_frame(read_model, f) for f in changed if apps is None or f.app_id in apps]:
            yield frame
