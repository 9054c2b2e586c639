"""Route and domain migration queries over State, and the cluster domain they make."""

from __future__ import annotations

from domain.objects import DomainMigration, Route
from projections.order import newest_first
from projections.state import State

#: Flynn: controller/data/route.go validateTCP, and the router's -tcp-range-start/-end.
TCP_PORTS = range(3000, 3501)


def route(state: State, route_id: str) -> Route | None:
    """A live route (a deleted one is not found)."""
    return state.routes.get(route_id)


def app_routes(state: State, app_id: str) -> list[Route]:
    """An app's routes, newest first (HEAD sorts by created_at DESC)."""
    return newest_first(state.routes[r] for r in state.app_routes.get(app_id, {}))


def app_route(state: State, app_id: str, route_type: str, route_id: str) -> Route | None:
    """A route of this app with this type; a route of another app is not found."""
    route = state.routes.get(route_id)
    if route is None or route.type != route_type or route.app_id != app_id:
        return None
    return route


def http_route_at(state: State, domain: str, path: str) -> Route | None:
    route_id = state.http_routes.get((domain, path))
    return None if route_id is None else state.routes[route_id]


def tcp_route_at(state: State, port: int) -> Route | None:
    route_id = state.tcp_routes.get(port)
    return None if route_id is None else state.routes[route_id]


def dependent_routes(state: State, domain: str) -> list[Route]:
    """The path routes (path other than "/") on a domain, which need its "/" route."""
    return [
        state.routes[route_id]
        for (route_domain, path), route_id in state.http_routes.items()
        if route_domain == domain and path != "/"
    ]


def free_tcp_port(state: State) -> int | None:
    """The first port of 3000-3500 no live tcp route holds. Flynn never hands out a port a
    deleted route once had (a leak); a freed port is free again here."""
    return next((port for port in TCP_PORTS if port not in state.tcp_routes), None)


def http_routes_under(state: State, domain: str) -> list[Route]:
    """The http routes on `domain` or one of its subdomains, "/" routes first."""
    routes = [
        state.routes[route_id]
        for (route_domain, _), route_id in state.http_routes.items()
        if route_domain == domain or route_domain.endswith("." + domain)
    ]
    return sorted(routes, key=lambda r: (r.path != "/", r.created_at, r.id))


def all_domain_migrations(state: State) -> list[DomainMigration]:
    """Every domain migration, newest first."""
    return newest_first(state.domain_migrations.values())


def last_finished_migration(state: State) -> DomainMigration | None:
    finished = [m for m in state.domain_migrations.values() if m.finished_at is not None]
    return max(finished, key=lambda m: (m.finished_at, m.created_at, m.id), default=None)


def current_domain(state: State, configured: str | None) -> str | None:
    """The cluster domain: that of the last finished migration, else DEFAULT_ROUTE_DOMAIN.

    Flynn redeploys its controller with a new DEFAULT_ROUTE_DOMAIN; ours cannot change its
    settings at run time, so the log says which domain is current.
    """
    migration = last_finished_migration(state)
    return migration.domain if migration is not None else configured
