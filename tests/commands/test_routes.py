"""Route deciders: given a history, a command yields route events or a domain error."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.apps import CreateApp, create_app
from commands.errors import ConflictError, NotFoundError, ValidationError
from commands.routes import (
    CreateRoute,
    DeleteRoute,
    RouteSpec,
    UpdateRoute,
    create_route,
    delete_route,
    normalized_path,
    update_route,
)
from domain.events import Event, RouteCreated, RouteDeleted, RouteUpdated
from domain.objects import Route
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)
APP = "00000000-0000-4000-8000-00000000000a"
OTHER = "00000000-0000-4000-8000-00000000000b"


def route_id(n: int) -> str:
    return f"00000000-0000-4000-9000-{n:012d}"


def with_apps() -> State:
    state = State()
    for app_id, name in ((APP, "web"), (OTHER, "other")):
        for event in create_app(state, CreateApp(id=app_id, now=T0, name=name)):
            apply(state, event, T0)
    return state


def decided(state: State, events: list[Event]) -> Route:
    """Fold the events and return the route of the last one."""
    for event in events:
        apply(state, event, T0)
    last = events[-1]
    assert isinstance(last, RouteCreated | RouteUpdated | RouteDeleted)
    return last.route


def add(state: State, n: int, app: str = APP, **spec: object) -> Route:
    command = CreateRoute(route_id(n), T0, app, RouteSpec(**spec))  # type: ignore[arg-type]
    return decided(state, create_route(state, command))


@pytest.mark.parametrize(
    "given_path, stored", [("", "/"), ("/", "/"), ("/api", "/api/"), ("/a/b/", "/a/b/")]
)
def test_paths_get_flynns_normal_form(given_path: str, stored: str):
    """An empty path is "/", and every path ends with "/"."""
    assert normalized_path(given_path) == stored


def test_a_new_route_belongs_to_the_app_of_the_command():
    """parent_ref is always the app's, whatever the client sent."""
    route = add(with_apps(), 1, type="http", domain="a.io", service="s")
    assert (route.parent_ref, route.path, route.created_at) == (f"controller/apps/{APP}", "/", T0)


def test_a_domain_and_path_taken_by_another_app_conflict():
    """(domain, path) is unique across apps; the conflict carries the existing route."""
    state = with_apps()
    existing = add(state, 1, type="http", domain="a.io", service="s")
    with pytest.raises(ConflictError) as raised:
        add(state, 2, app=OTHER, type="http", domain="a.io", path="/", service="t")
    assert (raised.value.message, raised.value.detail) == ("Duplicate route", existing.to_json())


def test_a_path_route_needs_a_root_route_on_its_domain():
    """ "/api/" without "/" on the same domain is refused; a "/" elsewhere does not count."""
    state = with_apps()
    add(state, 1, type="http", domain="b.io", service="s")
    with pytest.raises(ValidationError) as raised:
        add(state, 2, type="http", domain="a.io", path="/api", service="s")
    assert raised.value.field == "path"


def test_a_root_route_cannot_move_away_from_its_dependents():
    """Moving a "/" route to a path would orphan its path routes: refused."""
    state = with_apps()
    root = add(state, 1, type="http", domain="a.io", service="s")
    add(state, 2, type="http", domain="a.io", path="/api/", service="s")
    spec = RouteSpec(type="http", domain="a.io", path="/v2/", service="s")
    with pytest.raises(ValidationError):
        update_route(state, UpdateRoute(APP, "http", root.id, T1, spec))


def test_update_keeps_created_at_parent_and_certificate_when_not_given():
    """PUT replaces the plain fields; created_at, parent_ref and an omitted TLS pair stay."""
    state = with_apps()
    add(state, 1, type="http", domain="a.io", service="s", tls_cert="C", tls_key="K")
    spec = RouteSpec(type="http", service="t", sticky=True)
    route = decided(state, update_route(state, UpdateRoute(APP, "http", route_id(1), T1, spec)))
    assert (route.service, route.sticky, route.domain, route.path) == ("t", True, "a.io", "/")
    assert (route.created_at, route.updated_at, route.tls_cert, route.tls_key) == (T0, T1, "C", "K")
    assert route.parent_ref == f"controller/apps/{APP}"


def test_another_apps_route_is_not_found_for_update_or_delete():
    """A route is changed or deleted only through its own app."""
    state = with_apps()
    route = add(state, 1, type="tcp", service="s")
    with pytest.raises(NotFoundError):
        delete_route(state, DeleteRoute(OTHER, "tcp", route.id, T1))
    with pytest.raises(NotFoundError):
        update_route(state, UpdateRoute(OTHER, "tcp", route.id, T1, RouteSpec(type="tcp")))


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_tcp_ports_stay_unique_in_3000_3500_and_freed_ones_are_reused(steps: list[bool]):
    """After any run of allocations (True) and deletions of the oldest (False), the live
    ports are distinct, in range, and each new one is the lowest free port."""
    state = with_apps()
    live: list[Route] = []
    for n, allocate in enumerate(steps):
        if allocate:
            route = add(state, n, type="tcp", service="s")
            assert route.port == min(set(range(3000, 3501)) - {r.port for r in live})
            live.append(route)
        elif live:
            decided(state, delete_route(state, DeleteRoute(APP, "tcp", live.pop(0).id, T1)))
    ports = [r.port for r in live]
    assert len(set(ports)) == len(ports) and all(3000 <= p <= 3500 for p in ports)
