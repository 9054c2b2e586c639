"""App commands and their deciders: create, update, set release, delete (with its cascade)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from commands.app_names import generated_app_name
from commands.errors import AlreadyExistsError, NotFoundError, ValidationError
from commands.releases import release_deletion
from commands.types import handler, handlers
from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    AppUpdated,
    Event,
    ResourceDeleted,
    RouteCreated,
    RouteDeleted,
)
from domain.ids import given_id
from domain.objects import DEFAULT_DEPLOY_TIMEOUT, DEFAULT_STRATEGY, JSON, App, Route
from projections.apps import find_app
from projections.releases import app_releases
from projections.routes import app_routes
from projections.state import State


@attrs.frozen
class CreateApp:
    id: str
    now: datetime
    name: str | None = None
    meta: dict[str, str] = attrs.field(factory=dict)
    strategy: str | None = None
    deploy_timeout: int | None = None
    protected: bool = False
    # The default HTTP route "<name>.<domain>" -> "<name>-web", when the service has a domain.
    default_route_domain: str | None = None
    route_id: str | None = None

    @classmethod
    def from_json(
        cls, doc: JSON, *, new_id: str, now: datetime, route_id: str | None, domain: str | None
    ) -> CreateApp:
        """From a schema-checked body; server-made fields (created_at, release) are ignored."""
        timeout = doc.get("deploy_timeout")
        return cls(
            id=given_id(doc, new_id),
            now=now,
            name=doc.get("name") or None,
            meta=doc.get("meta") or {},
            strategy=doc.get("strategy") or None,
            deploy_timeout=int(timeout) if timeout is not None else None,
            protected=bool(doc.get("protected")),
            default_route_domain=domain,
            route_id=route_id,
        )


@attrs.frozen
class UpdateApp:
    """POST /apps/:id: only the keys present (and not null) change; meta is replaced whole."""

    app: str  # id or name
    now: datetime
    meta: dict[str, str] | None = None
    strategy: str | None = None
    deploy_timeout: int | None = None
    protected: bool | None = None

    @classmethod
    def from_json(cls, doc: JSON, *, app: str, now: datetime) -> UpdateApp:
        """Flynn applies strategy, meta (null ignored) and deploy_timeout; ignores name and id."""
        timeout = doc.get("deploy_timeout")
        return cls(
            app=app,
            now=now,
            meta=doc.get("meta"),
            strategy=doc.get("strategy") or None,
            deploy_timeout=int(timeout) if timeout is not None else None,
            protected=doc.get("protected"),
        )


@attrs.frozen
class SetAppRelease:
    app: str
    release_id: str
    now: datetime


@attrs.frozen
class DeleteApp:
    app: str
    now: datetime
    # Resources only this app used, already deprovisioned at their providers.
    deprovisioned: tuple[str, ...] = ()


def create_app(state: State, cmd: CreateApp) -> list[Event]:
    name = cmd.name or generated_app_name(
        state.counters.get("apps_created", 0), state.app_ids_by_name
    )
    if name in state.app_ids_by_name:
        raise AlreadyExistsError(f'application "{name}" already exists')
    if cmd.id in state.apps or cmd.id in state.deleted_apps:
        raise AlreadyExistsError(f'application with id "{cmd.id}" already exists')
    app = App(
        id=cmd.id,
        name=name,
        created_at=cmd.now,
        updated_at=cmd.now,
        meta=cmd.meta,
        strategy=cmd.strategy or DEFAULT_STRATEGY,
        # Flynn: 0 on create means the default (controller/data/app.go).
        deploy_timeout=cmd.deploy_timeout or DEFAULT_DEPLOY_TIMEOUT,
        protected=cmd.protected,
    )
    events: list[Event] = [AppCreated(app)]
    route = _default_route(state, app, cmd)
    if route is not None:
        events.append(RouteCreated(route))
    return events


def _default_route(state: State, app: App, cmd: CreateApp) -> Route | None:
    # Flynn creates this route after its transaction and only logs a failure; deciding it
    # here makes app and route one atomic append. A domain already routed is left alone.
    if not cmd.default_route_domain or not cmd.route_id or app.is_system:
        return None
    domain = f"{app.name}.{cmd.default_route_domain}"
    if (domain, "/") in state.http_routes:
        return None
    return Route(
        type="http",
        id=cmd.route_id,
        parent_ref=f"controller/apps/{app.id}",
        service=f"{app.name}-web",
        created_at=cmd.now,
        updated_at=cmd.now,
        domain=domain,
        path="/",
    )


def require_app(state: State, ref: str) -> App:
    app = find_app(state, ref)
    if app is None:
        raise NotFoundError(f"app {ref!r} not found")
    return app


def update_app(state: State, cmd: UpdateApp) -> list[Event]:
    app = require_app(state, cmd.app)
    changes: dict[str, Any] = {"updated_at": cmd.now}
    if cmd.meta is not None:
        changes["meta"] = cmd.meta
    if cmd.strategy:
        changes["strategy"] = cmd.strategy
    if cmd.deploy_timeout:
        changes["deploy_timeout"] = cmd.deploy_timeout
    if cmd.protected is not None:
        changes["protected"] = cmd.protected
    # Flynn emits the event even when nothing changed.
    return [AppUpdated(attrs.evolve(app, **changes))]


def set_app_release(state: State, cmd: SetAppRelease) -> list[Event]:
    app = require_app(state, cmd.app)
    release = state.releases.get(cmd.release_id)
    if release is None:
        raise ValidationError("", f"could not find release with ID {cmd.release_id}")
    previous = state.releases.get(app.release_id) if app.release_id else None
    return [AppReleaseSet(app.id, release, previous)]


def protected_error(action: str) -> ValidationError:
    return ValidationError(
        "protected", f"is true: the app cannot be {action}; set protected to false first"
    )


def check_deletable(app: App) -> None:
    if app.protected:
        raise protected_error("deleted")


def delete_app(state: State, cmd: DeleteApp) -> list[Event]:
    # Flynn HEAD's worker (controller/worker/app_deletion): routes, then the app's releases
    # (each a release_deletion), both as the API lists them, then resources, then the app.
    app = require_app(state, cmd.app)
    check_deletable(app)
    routes = app_routes(state, app.id)
    releases = app_releases(state, app.id)
    resources = [state.resources[r] for r in cmd.deprovisioned if r in state.resources]
    events: list[Event] = [RouteDeleted(route) for route in routes]
    events += [release_deletion(state, app.id, release.id) for release in releases]
    for resource in resources:
        events += [ResourceDeleted(resource, a) for a in resource.apps] or [
            ResourceDeleted(resource)
        ]
    events.append(AppDeleted(app.id, tuple(routes), tuple(resources), tuple(releases)))
    return events


HANDLERS = handlers(
    handler(CreateApp, create_app),
    handler(UpdateApp, update_app),
    handler(SetAppRelease, set_app_release),
    handler(DeleteApp, delete_app),
)
