"""Apps: POST/GET /apps, GET/POST/DELETE /apps/{app} (Flynn: controller/app.go)."""

from __future__ import annotations

from aiohttp import web

from commands.apps import CreateApp, DeleteApp, UpdateApp, check_deletable
from commands.providers import DeleteResources
from controller import keys
from controller.handlers.common import dispatch, model, path_app, payload
from controller.handlers.providers import deprovision_app_resources
from controller.http import empty_response, json_response, read_json
from controller.visibility import limited_to
from domain.clock import now
from domain.events import AppCreated, AppUpdated
from domain.ids import new_id
from projections.apps import all_apps
from projections.routes import current_domain


async def create_app(request: web.Request) -> web.Response:
    doc = await read_json(request)
    read_model = model(request)
    # After a domain migration the log's domain wins over DEFAULT_ROUTE_DOMAIN.
    domain = current_domain(read_model.state, request.app[keys.SETTINGS].default_route_domain)
    route_id = new_id() if domain else None  # the default route's, when there is a domain
    command = CreateApp.from_json(doc, new_id=new_id(), now=now(), route_id=route_id, domain=domain)
    return json_response(payload(await dispatch(request, command), AppCreated))


async def list_apps(request: web.Request) -> web.Response:
    read_model, apps = model(request), limited_to(request)
    if apps is not None:
        mine = [app for app in all_apps(read_model.state) if app.id in apps]
        return json_response(read_model.encode_list(mine))
    return json_response(read_model.cached_list("apps", lambda: all_apps(read_model.state)))


async def get_app(request: web.Request) -> web.Response:
    return json_response(model(request).encode(path_app(request)))


async def update_app(request: web.Request) -> web.Response:
    doc = await read_json(request)
    app = path_app(request)
    records = await dispatch(request, UpdateApp.from_json(doc, app=app.id, now=now()))
    # Flynn answers with the stale updated_at (a bug); this is the app as updated.
    return json_response(payload(records, AppUpdated))


async def delete_app(request: web.Request) -> web.Response:
    app = path_app(request)
    check_deletable(app)  # before any resource is deprovisioned
    deprovisioned = await deprovision_app_resources(request, app.id)  # 502 if one fails
    try:
        await dispatch(request, DeleteApp(app.id, now(), deprovisioned))
    except Exception:
        # Gone at their providers whatever became of the app (protected meanwhile, ...).
        await dispatch(request, DeleteResources(deprovisioned, now()), "app_deletion")
        raise
    return empty_response()
