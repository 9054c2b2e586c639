"""The route table, in the order of Flynn's controller.go."""

from __future__ import annotations

from aiohttp import web

from controller.handlers import (
    apps,
    backup,
    deployments,
    domains,
    events,
    formations,
    jobs,
    logs,
    providers,
    releases,
    status,
)
from controller.handlers import routes as app_routes


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/ping", status.ping)
    r.add_get("/.well-known/status", status.status)
    r.add_get("/ca-cert", status.ca_cert)

    r.add_post("/apps", apps.create_app)
    r.add_get("/apps", apps.list_apps)
    r.add_get("/apps/{app}", apps.get_app)
    r.add_post("/apps/{app}", apps.update_app)
    r.add_post("/apps/{app}/meta", apps.update_app)
    r.add_delete("/apps/{app}", apps.delete_app)

    r.add_post("/artifacts", releases.create_artifact)
    r.add_get("/artifacts", releases.list_artifacts)
    r.add_get("/artifacts/{id}", releases.get_artifact)

    r.add_post("/releases", releases.create_release)
    r.add_get("/releases", releases.list_releases)
    r.add_get("/releases/{id}", releases.get_release)
    r.add_put("/apps/{app}/release", releases.set_app_release)
    r.add_get("/apps/{app}/release", releases.get_app_release)
    r.add_get("/apps/{app}/releases", releases.list_app_releases)

    # -- formations --------------------------------------------------------------------

    # -- jobs --------------------------------------------------------------------------

    # -- deployments -------------------------------------------------------------------

    # -- providers and resources -------------------------------------------------------

    # -- routes ------------------------------------------------------------------------

    # -- domain migration --------------------------------------------------------------

    # -- app logs ----------------------------------------------------------------------
    r.add_get("/apps/{app}/log", logs.app_log)

    r.add_get("/events", events.events)
    r.add_get("/events/{id}", events.get_event)

    # -- backup ------------------------------------------------------------------------

    _ = (backup, deployments, domains, formations, jobs, logs, providers, app_routes)
