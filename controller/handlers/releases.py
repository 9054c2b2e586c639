"""Artifacts and releases (Flynn: controller/artifact.go, release.go, app release), and
release deletion (Flynn HEAD)."""

from __future__ import annotations

from aiohttp import web

from commands.apps import SetAppRelease
from commands.errors import NotFoundError
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
from controller.visibility import limited_to, only_apps, sees_release, visible_release
from domain.clock import now
from domain.events import AppReleaseSet, ArtifactCreated, ReleaseCreated
from domain.ids import new_id
from projections.apps import find_app
from projections.releases import (
    all_artifacts,
    all_releases,
    app_releases,
    artifact,
    artifact_by_key,
    release,
)


async def create_artifact(request: web.Request) -> web.Response:
    command = CreateArtifact.from_json(await read_json(request), new_id=new_id(), now=now())
    record = recorded(await dispatch(request, command), ArtifactCreated)
    if record is not None:
        return json_response(record.data)
    # Idempotent on (type, uri): nothing recorded, the artifact holding the pair answers.
    read_model = model(request)
    existing = found(artifact_by_key(read_model.state, command.type, command.uri))
    return json_response(read_model.encode(existing))


async def list_artifacts(request: web.Request) -> web.Response:
    read_model = model(request)
    return json_response(
        read_model.cached_list("artifacts", lambda: all_artifacts(read_model.state))
    )


async def get_artifact(request: web.Request) -> web.Response:
    read_model = model(request)
    found_artifact = found(artifact(read_model.state, path_uuid(request, "id")))
    return json_response(read_model.encode(found_artifact))


async def create_release(request: web.Request) -> web.Response:
    command = CreateRelease.from_json(await read_json(request), new_id=new_id(), now=now())
    if limited_to(request) is not None:  # a release of one of its apps, named in app_id
        app = find_app(model(request).state, command.app or "")
        only_apps(request, [app.id] if app else [], "create releases")
    return json_response(payload(await dispatch(request, command), ReleaseCreated))


async def list_releases(request: web.Request) -> web.Response:
    read_model, apps = model(request), limited_to(request)
    if apps is not None:
        state = read_model.state
        mine = [r for r in all_releases(state) if sees_release(state, apps, r)]
        return json_response(read_model.encode_list(mine))
    return json_response(read_model.cached_list("releases", lambda: all_releases(read_model.state)))


async def get_release(request: web.Request) -> web.Response:
    read_model = model(request)
    found_release = found(release(read_model.state, path_uuid(request, "id")))
    if not sees_release(read_model.state, limited_to(request), found_release):
        raise NotFoundError()
    return json_response(read_model.encode(found_release))


async def set_app_release(request: web.Request) -> web.Response:
    doc = await read_json(request)
    app, release_id = path_app(request), str(doc["id"]).lower()
    visible_release(request, model(request).state, release_id)
    records = await dispatch(request, SetAppRelease(app.id, release_id, now()))
    return json_response(model(request).encode(event_from(records, AppReleaseSet).release))


async def get_app_release(request: web.Request) -> web.Response:
    app, read_model = path_app(request), model(request)
    current = release(read_model.state, app.release_id) if app.release_id else None
    return json_response(read_model.encode(found(current)))


async def list_app_releases(request: web.Request) -> web.Response:
    app, read_model = path_app(request), model(request)
    return json_response(read_model.encode_list(app_releases(read_model.state, app.id)))


async def delete_release(request: web.Request) -> web.Response:
    app, release_id = path_app(request), path_uuid(request, "id")
    await dispatch(request, DeleteRelease(app.id, release_id, now()))
    return empty_response()
