"""Deployments over HTTP (Flynn: controller/deployment.go): create, get, list an app's."""

from __future__ import annotations

from aiohttp import web

from commands.deployments import CreateDeployment
from commands.errors import NotFoundError
from controller.handlers.common import dispatch, event_from, found, model, path_app, path_uuid
from controller.http import json_response, read_json
from controller.visibility import limited_to, visible_release
from domain.clock import now
from domain.events import DeploymentCreated
from domain.ids import canonical_uuid, new_id
from projections.deployments import app_deployments, deployment


async def create_deployment(request: web.Request) -> web.Response:
    app = path_app(request)
    release_id = str((await read_json(request))["id"]).lower()
    release_id = canonical_uuid(release_id) or release_id
    visible_release(request, model(request).state, release_id)
    command = CreateDeployment(new_id(), app.id, release_id, now())
    created = event_from(await dispatch(request, command), DeploymentCreated).deployment
    # Pending, or complete at once when nothing ran (Flynn answers either with 200).
    return json_response(model(request).encode(created))


async def get_deployment(request: web.Request) -> web.Response:
    found_deployment = found(deployment(model(request).state, path_uuid(request, "id")))
    apps = limited_to(request)
    if apps is not None and found_deployment.app_id not in apps:
        raise NotFoundError()
    return json_response(model(request).encode(found_deployment))


async def list_app_deployments(request: web.Request) -> web.Response:
    app, read_model = path_app(request), model(request)
    return json_response(read_model.encode_list(app_deployments(read_model.state, app.id)))
