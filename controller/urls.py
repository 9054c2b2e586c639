"""The URL table: every method and path the API answers, in the order of Flynn's controller.go.

Each row (`controller.endpoints.Endpoint`) is the one place an endpoint is described: the
router is built from it (`setup_routes`), and so are the OpenAPI document, the schema
`read_json` checks a body against, and who may call it (the middleware's open paths and
`?key=` routes).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from aiohttp import web

from controller import openapi
from controller.endpoints import ENDPOINTS, JSON, Access, AppLimit, Endpoint
from controller.handlers import (
    apps,
    audit,
    backup,
    deployments,
    domains,
    events,
    formations,
    jobs,
    keys,
    logs,
    providers,
    releases,
    status,
)
from controller.handlers import routes as app_routes
from controller.keys import SCHEMAS
from domain.keys import Scope

_INT: JSON = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_BOOL_TEXT: JSON = {"type": "string", "enum": ["true", "false"]}
_EVENT_FILTER: tuple[tuple[str, JSON], ...] = (
    ("app_id", {"type": "string"}),
    ("object_types", {"type": "string", "description": "comma-separated object types"}),
    ("object_id", {"type": "string"}),
)
_LIST_OR_STREAM: JSON = {
    "type": "string",
    "description": "exactly application/json for a list; else a stream",
}
_EMPTY = ("empty",)
_LIST = ("list",)

URLS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", "/ping", status.ping, "Liveness (no key needed)", access=Access.OPEN, answers=_EMPTY
    ),
    Endpoint(
        "GET",
        "/.well-known/status",
        status.status,
        "Health: 200 healthy, 500 unhealthy",
        answers=("status",),
        scope=Scope.READ,
        app_limit=AppLimit.GLOBAL,
    ),
    Endpoint(
        "GET",
        "/ca-cert",
        status.ca_cert,
        "The cluster CA certificate (no key needed)",
        access=Access.OPEN_WITHOUT_PASSWORD,
        answers=("pem",),
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        openapi.openapi_json,
        "This document",
        scope=Scope.READ,
        app_limit=AppLimit.GLOBAL,
    ),
    # -- apps ----------------------------------------------------------------------------
    Endpoint(
        "POST",
        "/apps",
        apps.create_app,
        "Create an app",
        body="app",
        scope=Scope.DEPLOY,
        app_limit=AppLimit.REFUSE,
    ),
    Endpoint(
        "GET",
        "/apps",
        apps.list_apps,
        "List apps, newest first",
        answers=_LIST,
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint("GET", "/apps/{app}", apps.get_app, "Get an app by id or name", scope=Scope.READ),
    Endpoint(
        "POST",
        "/apps/{app}",
        apps.update_app,
        "Update an app",
        body="app_update",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "POST",
        "/apps/{app}/meta",
        apps.update_app,
        "Update an app's meta",
        body="app_update",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "DELETE",
        "/apps/{app}",
        apps.delete_app,
        "Delete an app",
        answers=_EMPTY,
        scope=Scope.DEPLOY,
    ),
    # -- artifacts and releases ------------------------------------------------------------
    Endpoint(
        "POST",
        "/artifacts",
        releases.create_artifact,
        "Create an artifact",
        body="artifact",
        scope=Scope.DEPLOY,
        app_limit=AppLimit.GLOBAL,
    ),
    Endpoint(
        "GET",
        "/artifacts",
        releases.list_artifacts,
        "List artifacts",
        answers=_LIST,
        scope=Scope.READ,
        app_limit=AppLimit.GLOBAL,
    ),
    Endpoint(
        "GET",
        "/artifacts/{id}",
        releases.get_artifact,
        "Get an artifact",
        scope=Scope.READ,
        app_limit=AppLimit.GLOBAL,
    ),
    Endpoint(
        "POST",
        "/releases",
        releases.create_release,
        "Create a release",
        body="release",
        scope=Scope.DEPLOY,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/releases",
        releases.list_releases,
        "List releases",
        answers=_LIST,
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/releases/{id}",
        releases.get_release,
        "Get a release",
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "PUT",
        "/apps/{app}/release",
        releases.set_app_release,
        "Set an app's release",
        body="app_release",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/release",
        releases.get_app_release,
        "Get an app's release",
        scope=Scope.READ,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/releases",
        releases.list_app_releases,
        "List an app's releases",
        answers=_LIST,
        scope=Scope.READ,
    ),
    Endpoint(
        "DELETE",
        "/apps/{app}/releases/{id}",
        releases.delete_release,
        "Delete a release from an app (not its current one, nor one scaled up)",
        answers=_EMPTY,
        scope=Scope.DEPLOY,
    ),
    # -- formations ----------------------------------------------------------------------
    Endpoint(
        "PUT",
        "/apps/{app}/formations/{release}",
        formations.put_formation,
        "Scale a release",
        body="formation",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/formations/{release}",
        formations.get_formation,
        "Get a formation",
        query=(("expand", _BOOL_TEXT),),
        scope=Scope.READ,
    ),
    Endpoint(
        "DELETE",
        "/apps/{app}/formations/{release}",
        formations.delete_formation,
        "Delete a formation",
        answers=_EMPTY,
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/formations",
        formations.list_app_formations,
        "List an app's formations",
        answers=_LIST,
        scope=Scope.READ,
    ),
    Endpoint(
        "GET",
        "/formations",
        formations.formations,
        "Active formations (?active=true), or the scheduler's stream (Accept: text/event-stream)",
        access=Access.KEY_OR_STREAM_PARAM,
        query=(("active", _BOOL_TEXT), ("since", {"type": "string", "format": "date-time"})),
        headers=(("Accept", {"type": "string"}),),
        answers=("list", "stream"),
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    # -- jobs ----------------------------------------------------------------------------
    Endpoint(
        "POST",
        "/apps/{app}/jobs",
        jobs.run_job,
        "Run a one-off job",
        body="new_job",
        scope=Scope.DEPLOY,
    ),
    Endpoint("GET", "/apps/{app}/jobs/{job}", jobs.get_job, "Get a job", scope=Scope.READ),
    Endpoint(
        "PUT",
        "/apps/{app}/jobs/{job}",
        jobs.put_job,
        "Report a job's state",
        body="job",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/jobs",
        jobs.list_jobs,
        "List an app's jobs",
        answers=_LIST,
        scope=Scope.READ,
    ),
    Endpoint(
        "DELETE",
        "/apps/{app}/jobs/{job}",
        jobs.kill_job,
        "Stop a job",
        answers=_EMPTY,
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/active-jobs",
        jobs.list_active_jobs,
        "List active jobs",
        answers=_LIST,
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    # -- deployments ---------------------------------------------------------------------
    Endpoint(
        "POST",
        "/apps/{app}/deploy",
        deployments.create_deployment,
        "Deploy a release",
        body="deployment",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/deployments/{id}",
        deployments.get_deployment,
        "Get a deployment",
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/deployments",
        deployments.list_app_deployments,
        "List an app's deployments",
        answers=_LIST,
        scope=Scope.READ,
    ),
    # -- providers and resources ---------------------------------------------------------
    Endpoint(
        "POST",
        "/providers",
        providers.create_provider,
        "Create a resource provider",
        body="provider",
        scope=Scope.ADMIN,
        app_limit=AppLimit.REFUSE,
    ),
    Endpoint(
        "GET",
        "/providers",
        providers.list_providers,
        "List providers",
        answers=_LIST,
        scope=Scope.READ,
        app_limit=AppLimit.GLOBAL,
    ),
    Endpoint(
        "GET",
        "/providers/{provider}",
        providers.get_provider,
        "Get a provider by id or name",
        scope=Scope.READ,
        app_limit=AppLimit.GLOBAL,
    ),
    Endpoint(
        "POST",
        "/providers/{provider}/resources",
        providers.provision_resource,
        "Provision a resource",
        body="resource_req",
        scope=Scope.DEPLOY,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/providers/{provider}/resources",
        providers.list_resources,
        "List a provider's resources",
        answers=_LIST,
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "PUT",
        "/providers/{provider}/resources/{resource}",
        providers.put_resource,
        "Register a resource",
        body="resource",
        scope=Scope.DEPLOY,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/providers/{provider}/resources/{resource}",
        providers.get_resource,
        "Get a resource",
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "DELETE",
        "/providers/{provider}/resources/{resource}",
        providers.delete_resource,
        "Deprovision a resource",
        scope=Scope.DEPLOY,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/resources",
        providers.list_app_resources,
        "List an app's resources",
        answers=_LIST,
        scope=Scope.READ,
    ),
    # -- routes --------------------------------------------------------------------------
    Endpoint(
        "POST",
        "/apps/{app}/routes",
        app_routes.create_route,
        "Create a route",
        body="route",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/routes",
        app_routes.list_routes,
        "List an app's routes",
        answers=_LIST,
        scope=Scope.READ,
    ),
    Endpoint(
        "GET",
        "/apps/{app}/routes/{type}/{id}",
        app_routes.get_route,
        "Get a route",
        scope=Scope.READ,
    ),
    Endpoint(
        "PUT",
        "/apps/{app}/routes/{type}/{id}",
        app_routes.update_route,
        "Update a route",
        body="route",
        scope=Scope.DEPLOY,
    ),
    Endpoint(
        "DELETE",
        "/apps/{app}/routes/{type}/{id}",
        app_routes.delete_route,
        "Delete a route",
        answers=_EMPTY,
        scope=Scope.DEPLOY,
    ),
    # -- domain migration ----------------------------------------------------------------
    Endpoint(
        "PUT",
        "/domain",
        domains.migrate_domain,
        "Migrate the cluster domain",
        body="domain_migration",
        scope=Scope.ADMIN,
        app_limit=AppLimit.REFUSE,
    ),
    # -- app logs ------------------------------------------------------------------------
    Endpoint(
        "GET",
        "/apps/{app}/log",
        logs.app_log,
        "An app's log: JSON lines, or a stream (Accept: text/event-stream)",
        access=Access.KEY_OR_STREAM_PARAM,
        query=(
            ("lines", {"type": "integer", "minimum": 0, "maximum": 10_000}),
            ("follow", _BOOL_TEXT),
            ("job_id", {"type": "string"}),
            ("process_type", {"type": "string"}),
        ),
        answers=("text", "stream"),
        scope=Scope.READ,
    ),
    # -- events --------------------------------------------------------------------------
    Endpoint(
        "GET",
        "/events",
        events.events,
        "The event log: a list (Accept: application/json, newest first) or a stream",
        access=Access.KEY_OR_STREAM_PARAM,
        query=(
            *_EVENT_FILTER,
            ("before_id", _INT),
            ("since_id", _INT),
            ("count", _INT),
            ("past", _BOOL_TEXT),
        ),
        headers=(("Accept", _LIST_OR_STREAM), ("Last-Event-Id", _INT)),
        answers=("list", "stream"),
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    Endpoint(
        "GET",
        "/events/{id}",
        events.get_event,
        "Get an event",
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
    # -- backup --------------------------------------------------------------------------
    Endpoint(
        "GET",
        "/backup",
        backup.backup,
        "Download a backup of the log (a tar)",
        access=Access.KEY_OR_PARAM,
        answers=("tar",),
        scope=Scope.ADMIN,
        app_limit=AppLimit.REFUSE,
    ),
    # -- Evenflow's own: keys and the audit view ------------------------------------------
    Endpoint(
        "POST",
        "/keys",
        keys.create_key,
        "Make a key; the answer holds its secret, shown this once",
        body="key",
        scope=Scope.ADMIN,
    ),
    Endpoint("GET", "/keys", keys.list_keys, "List the keys", answers=_LIST, scope=Scope.ADMIN),
    Endpoint("DELETE", "/keys/{name}", keys.revoke_key, "Revoke a key", scope=Scope.ADMIN),
    Endpoint(
        "GET",
        "/audit",
        audit.audit,
        "Who did what, and when: the log's events with their actors, newest first, paged",
        query=(
            ("actor", {"type": "string", "description": "a key's name, or a component"}),
            ("app_id", {"type": "string", "description": "an app's id or name"}),
            ("since", {"type": "string", "format": "date-time"}),
            ("until", {"type": "string", "format": "date-time"}),
            ("before_id", _INT),
            ("count", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        answers=("audit",),
        scope=Scope.READ,
        app_limit=AppLimit.FILTER,
    ),
)


def setup_routes(app: web.Application, urls: Sequence[Endpoint] | None = None) -> None:
    """Add `urls` (the URL table unless told) to the app's router (a GET with its HEAD
    twin), each route's row under ENDPOINTS, and the OpenAPI document of them all."""
    urls = URLS if urls is None else urls
    schemas = app[SCHEMAS].names
    found: dict[web.AbstractRoute, Endpoint] = {}
    for url in urls:
        if url.body is not None and url.body not in schemas:
            raise ValueError(f"{url.method} {url.path}: no schema schemas/{url.body}.json")
        resource = app.router.add_resource(url.path)
        if url.method == "GET":
            found[resource.add_route("HEAD", url.handler)] = url
        found[resource.add_route(url.method, url.handler)] = url
    app[ENDPOINTS] = found
    app[openapi.OPENAPI] = orjson.dumps(openapi.build_document(urls))
