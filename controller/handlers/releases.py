"""Artifacts and releases (Flynn: controller/artifact.go, release.go, app release), and
release deletion (Flynn HEAD)."""

from __future__ import annotations

from aiohttp import web

from commands.apps import SetAppRelease
from commands.releases import CreateArtifact, CreateRelease, DeleteRelease
from controller.handlers.common import (
    dispatch,
    event_from,
    found,
    model,
    path_app,
    path_uuid,
    payload,
    recorded,
)
from controller.http import empty_response, json_response, read_json
from domain.clock import now
from domain.events import AppReleaseSet, ArtifactCreated, ReleaseCreated
from domain.ids import new_id


async def create_artifact(request: web.Request) -> web.Response:
    command = CreateArtifact.from_json(await read_json(request), new_id=new_id(), now=now())
    record = recorded(await dispatch(request, command), ArtifactCreated)
    if record is not None:
        return json_response(record.data)
    # Idempotent on (type, uri): nothing recorded, the artifact holding the pair answers.
    existing = found(model(request).artifact_by_key(command.type, command.uri))
    return json_response(model(request).encode(existing))


async def list_artifacts(request: web.Request) -> web.Response:
    read_model = model(request)
    return json_response(read_model.cached_list("artifacts", read_model.artifacts))


async def get_artifact(request: web.Request) -> web.Response:
    return json_response(
        model(request).encode(found(model(request).artifact(path_uuid(request, "id"))))
    )


async def create_release(request: web.Request) -> web.Response:
    command = CreateRelease.from_json(await read_json(request), new_id=new_id(), now=now())
    return json_response(payload(await dispatch(request, command), ReleaseCreated))


async def list_releases(request: web.Request) -> web.Response:
    read_model = model(request)
    return json_response(read_model.cached_list("releases", read_model.releases))


async def get_release(request: web.Request) -> web.Response:
    return json_response(
        model(request).encode(found(model(request).release(path_uuid(request, "id"))))
    )


async def set_app_release(request: web.Request) -> web.Response:
    doc = await read_json(request)
    app = path_app(request)
    records = await dispatch(request, SetAppRelease(app.id, str(doc["id"]).lower(), now()))
    return json_response(model(request).encode(event_from(records, AppReleaseSet).release))


async def get_app_release(request: web.Request) -> web.Response:
    app = path_app(request)
    release = model(request).release(app.release_id) if app.release_id else None
    return json_response(model(request).encode(found(release)))


async def list_app_releases(request: web.Request) -> web.Response:
    read_model = model(request)
    return json_response(read_model.encode_list(read_model.app_releases(path_app(request).id)))


async def delete_release(request: web.Request) -> web.Response:
    app, release_id = path_app(request), path_uuid(request, "id")
    await dispatch(request, DeleteRelease(app.id, release_id, now()))
    return empty_response()
