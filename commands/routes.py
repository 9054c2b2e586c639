"""Route commands and their deciders (Flynn: controller/routes.go, controller/data/route.go).

http routes are unique on (domain, path), tcp routes on port. A path route needs a "/"
route on its domain. TLS pairs are checked at the HTTP edge (it needs the ssl module).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import attrs

from commands.apps import require_app
from commands.errors import ConflictError, NotFoundError, ValidationError
from commands.types import handler, handlers
from domain.events import Event, RouteCreated, RouteDeleted, RouteUpdated
from domain.objects import JSON, App, Route
from projections.routes import (
    app_route,
    dependent_routes,
    free_tcp_port,
    http_route_at,
    tcp_route_at,
)
from projections.state import State

#: Flynn: controller/data/route.go and the router's path check.
_PATH = re.compile(r"/(.*/)?", re.DOTALL)
#: Flynn: controller/data/route.go validateTCP.
_RESERVED_PORTS = (80, 443)


@attrs.frozen
class RouteSpec:
    """A route as a client sends it; None for the TLS pair means "not given"."""

    type: str
    service: str = ""
    domain: str = ""
    path: str = ""
    port: int = 0
    sticky: bool = False
    leader: bool = False
    drain_backends: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_json(cls, doc: JSON) -> RouteSpec:
        """From a schema-checked body. Server-made fields (id, parent_ref, created_at — the
        CLI sends "0001-01-01T00:00:00Z" — and updated_at) are ignored; null is "not given"."""
        tls_cert, tls_key = _tls_pair(doc)
        return cls(
            type=doc["type"],
            service=doc.get("service") or "",
            domain=doc.get("domain") or "",
            path=doc.get("path") or "",
            port=doc.get("port") or 0,
            sticky=bool(doc.get("sticky")),
            leader=bool(doc.get("leader")),
            drain_backends=bool(doc.get("drain_backends")),
            tls_cert=tls_cert,
            tls_key=tls_key,
        )


def _tls_pair(doc: JSON) -> tuple[str | None, str | None]:
    """SEED's tls_cert/tls_key or HEAD's certificate {cert (or chain), key}; (None, None)
    when neither is given. Flynn trims blanks and newlines around the PEM blocks."""
    legacy = doc.get("tls_cert") is not None or doc.get("tls_key") is not None
    certificate: dict[str, Any] = doc.get("certificate") or {}
    if legacy and certificate:
        # Flynn HEAD: controller/data/route.go validateHTTP.
        raise ValidationError(
            "certificate", "cannot be set along with the deprecated tls_cert and tls_key"
        )
    if legacy:
        cert, key = doc.get("tls_cert"), doc.get("tls_key")
    elif certificate:
        cert, key = certificate.get("cert") or certificate.get("chain"), certificate.get("key")
    else:
        return None, None
    return (cert or "").strip(" \n"), (key or "").strip(" \n")


@attrs.frozen
class CreateRoute:
    id: str
    now: datetime
    app: str
    spec: RouteSpec


@attrs.frozen
class UpdateRoute:
    """Replace a route's service, sticky, path, port, leader and (when given) its TLS pair."""

    app: str
    type: str
    id: str
    now: datetime
    spec: RouteSpec


@attrs.frozen
class DeleteRoute:
    app: str
    type: str
    id: str
    now: datetime


def create_route(state: State, cmd: CreateRoute) -> list[Event]:
    app = require_app(state, cmd.app)
    spec = cmd.spec
    route = Route(
        type=spec.type,
        id=cmd.id,
        parent_ref=f"controller/apps/{app.id}",  # Flynn forces it to the path's app
        service=spec.service,
        created_at=cmd.now,
        updated_at=cmd.now,
        domain=spec.domain,
        tls_cert=spec.tls_cert or "",
        tls_key=spec.tls_key or "",
        sticky=spec.sticky,
        path=spec.path,
        port=spec.port,
        leader=spec.leader,
        drain_backends=spec.drain_backends,
    )
    return [RouteCreated(checked(state, route))]


def update_route(state: State, cmd: UpdateRoute) -> list[Event]:
    current = _require_route(state, require_app(state, cmd.app), cmd.type, cmd.id)
    spec = cmd.spec
    if spec.type != current.type:
        raise ValidationError("type", "cannot be changed")
    # HEAD matches `id AND domain`, so another domain is its 404; a 400 says why.
    if current.type == "http" and spec.domain and spec.domain != current.domain:
        raise ValidationError("domain", "cannot be changed")
    route = attrs.evolve(
        current,
        # HEAD also replaces parent_ref from the body, blanking it when omitted (a bug):
        # the route stays the app's.
        service=spec.service,
        sticky=spec.sticky,
        path=spec.path,
        port=spec.port or current.port,  # 0 keeps the port (HEAD would move it)
        leader=spec.leader,
        updated_at=cmd.now,
    )
    if spec.tls_cert is not None:  # HEAD: the certificate changes only when given
        route = attrs.evolve(route, tls_cert=spec.tls_cert, tls_key=spec.tls_key or "")
    # Moving a "/" route to another path fails the parent rule below: its dependents keep it.
    return [RouteUpdated(checked(state, route))]


def delete_route(state: State, cmd: DeleteRoute) -> list[Event]:
    route = _require_route(state, require_app(state, cmd.app), cmd.type, cmd.id)
    if route.type == "http" and route.path == "/":
        _check_no_dependents(state, route)
    return [RouteDeleted(route)]


def checked(state: State, route: Route) -> Route:
    """The route made valid against `state` (path normalized, tcp port chosen), or an error."""
    if not route.service:
        raise ValidationError("service", "must be set")
    if route.type == "http":
        return _checked_http(state, route)
    return _checked_tcp(state, route)


def _checked_http(state: State, route: Route) -> Route:
    if not route.domain:
        raise ValidationError("domain", "must be set")
    if route.port:
        raise ValidationError("port", "must have the default value of zero")
    if bool(route.tls_cert) != bool(route.tls_key):
        # Flynn stores a lone cert or key, which the router cannot use.
        raise ValidationError("", "Certificate invalid: tls_cert and tls_key go together")
    path = normalized_path(route.path)
    if not _PATH.fullmatch(path):
        raise ValidationError("path", "must start with a forward slash")
    route = attrs.evolve(route, path=path)
    existing = http_route_at(state, route.domain, path)
    if existing is not None and existing.id != route.id:
        raise ConflictError("Duplicate route", detail=existing.to_json())
    parent = http_route_at(state, route.domain, "/")
    if path != "/" and (parent is None or parent.id == route.id):
        raise ValidationError("path", "is not allowed as there is no route at the default path")
    return route


def _checked_tcp(state: State, route: Route) -> Route:
    # Flynn keeps no domain, path, stickiness or certificate on a tcp route.
    route = attrs.evolve(route, domain="", path="", sticky=False, tls_cert="", tls_key="")
    if route.port in _RESERVED_PORTS:
        raise ConflictError("Port reserved for HTTP/HTTPS traffic")
    if route.port == 0:
        port = free_tcp_port(state)
        if port is None:
            raise ConflictError("No free port for a TCP route in 3000-3500")
        return attrs.evolve(route, port=port)
    existing = tcp_route_at(state, route.port)
    if existing is not None and existing.id != route.id:
        raise ConflictError("Duplicate route", detail=existing.to_json())
    return route


def normalized_path(path: str) -> str:
    """Flynn: "" is "/", and a path always ends with "/" (controller/data/route.go)."""
    if not path:
        return "/"
    return path if path.endswith("/") else path + "/"


def _require_route(state: State, app: App, route_type: str, route_id: str) -> Route:
    route = app_route(state, app.id, route_type, route_id)
    if route is None:
        raise NotFoundError(f"route {route_type}/{route_id} not found")
    return route


def _check_no_dependents(state: State, route: Route) -> None:
    # Flynn HEAD: controller/data/route.go validateHTTP (routeOpDelete).
    if dependent_routes(state, route.domain):
        raise ValidationError("", "Route has dependent routes")


HANDLERS = handlers(
    handler(CreateRoute, create_route),
    handler(UpdateRoute, update_route),
    handler(DeleteRoute, delete_route),
)
