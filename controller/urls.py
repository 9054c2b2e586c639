"""The URL table: every method and path the API answers, in the order of Flynn's controller.go."""

from __future__ import annotations

from aiohttp import web

from controller import openapi
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
    r.add_get("/openapi.json", openapi.openapi_json)

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
    r.add_delete("/apps/{app}/releases/{id}", releases.delete_release)

    # -- formations --------------------------------------------------------------------
    r.add_put("/apps/{app}/formations/{release}", formations.put_formation)
    r.add_get("/apps/{app}/formations/{release}", formations.get_formation)
    r.add_delete("/apps/{app}/formations/{release}", formations.delete_formation)
    r.add_get("/apps/{app}/formations", formations.list_app_formations)
    r.add_get("/formations", formations.formations)

    # -- jobs --------------------------------------------------------------------------
    r.add_post("/apps/{app}/jobs", jobs.run_job)
    r.add_get("/apps/{app}/jobs/{job}", jobs.get_job)
    r.add_put("/apps/{app}/jobs/{job}", jobs.put_job)
    r.add_get("/apps/{app}/jobs", jobs.list_jobs)
    r.add_delete("/apps/{app}/jobs/{job}", jobs.kill_job)
    r.add_get("/active-jobs", jobs.list_active_jobs)

    # -- deployments -------------------------------------------------------------------
    r.add_post("/apps/{app}/deploy", deployments.create_deployment)
    r.add_get("/deployments/{id}", deployments.get_deployment)
    r.add_get("/apps/{app}/deployments", deployments.list_app_deployments)

    # -- providers and resources -------------------------------------------------------
    r.add_post("/providers", providers.create_provider)
    r.add_get("/providers", providers.list_providers)
    r.add_get("/providers/{provider}", providers.get_provider)
    r.add_post("/providers/{provider}/resources", providers.provision_resource)
    r.add_get("/providers/{provider}/resources", providers.list_resources)
    r.add_put("/providers/{provider}/resources/{resource}", providers.put_resource)
    r.add_get("/providers/{provider}/resources/{resource}", providers.get_resource)
    r.add_delete("/providers/{provider}/resources/{resource}", providers.delete_resource)
    r.add_get("/apps/{app}/resources", providers.list_app_resources)

    # -- routes ------------------------------------------------------------------------
    r.add_post("/apps/{app}/routes", app_routes.create_route)
    r.add_get("/apps/{app}/routes", app_routes.list_routes)
    r.add_get("/apps/{app}/routes/{type}/{id}", app_routes.get_route)
    r.add_put("/apps/{app}/routes/{type}/{id}", app_routes.update_route)
    r.add_delete("/apps/{app}/routes/{type}/{id}", app_routes.delete_route)

    # -- domain migration --------------------------------------------------------------
    r.add_put("/domain", domains.migrate_domain)

    # -- app logs ----------------------------------------------------------------------
    r.add_get("/apps/{app}/log", logs.app_log)

    r.add_get("/events", events.events)
    r.add_get("/events/{id}", events.get_event)

    # -- backup ------------------------------------------------------------------------
    r.add_get("/backup", backup.backup)

    _ = (backup, deployments, domains, logs, providers, app_routes)
