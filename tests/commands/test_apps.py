"""App deciders: given a history, a command yields events or a domain error (pure, no I/O)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.apps import (
    CreateApp,
    DeleteApp,
    SetAppRelease,
    UpdateApp,
    create_app,
    delete_app,
    set_app_release,
    update_app,
)
from commands.errors import AlreadyExistsError, NotFoundError, ValidationError
from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    AppUpdated,
    Event,
    ReleaseCreated,
    RouteCreated,
    RouteDeleted,
)
from domain.objects import Release
from projections.state import State, apply
from tests.strategies import names, uuids

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def given_history(*events: Event) -> State:
    state = State()
    for event in events:
        apply(state, event, T0)
    return state


def created(state: State, name: str, **kw: Any) -> tuple[State, AppCreated]:
    (event, *_) = create_app(
        state,
        CreateApp(id=f"00000000-0000-4000-8000-{len(state.apps):012d}", now=T0, name=name, **kw),
    )
    assert isinstance(event, AppCreated)
    apply(state, event, T0)
    return state, event


def test_create_app_fills_flynns_defaults():
    """A new app gets strategy all-at-once, deploy_timeout 30 and empty meta."""
    (event,) = create_app(State(), CreateApp(id="a", now=T0, name="web"))
    assert isinstance(event, AppCreated)
    assert (event.app.strategy, event.app.deploy_timeout, event.app.meta) == ("all-at-once", 30, {})
    assert event.app.created_at == event.app.updated_at == T0


def test_create_app_with_a_domain_adds_the_default_route_atomically():
    """With a default domain, the decision is the app and its route, one append."""
    events = create_app(
        State(), CreateApp(id="a", now=T0, name="web", default_route_domain="d.io", route_id="r")
    )
    assert [type(e) for e in events] == [AppCreated, RouteCreated]
    route = events[1].route  # type: ignore[union-attr]
    assert (route.domain, route.service, route.path, route.parent_ref) == (
        "web.d.io",
        "web-web",
        "/",
        "controller/apps/a",
    )


@given(st.lists(names, min_size=1, max_size=8), names)
def test_a_taken_name_is_refused_and_emits_nothing(existing: list[str], name: str):
    """After any history of creates, creating a taken name raises AlreadyExistsError."""
    state = State()
    for n in dict.fromkeys(existing):
        created(state, n)
    command = CreateApp(id="new", now=T0, name=name)
    if name in state.app_ids_by_name:
        with pytest.raises(AlreadyExistsError):
            create_app(state, command)
    else:
        assert [e.app.name for e in create_app(state, command)] == [name]  # type: ignore[union-attr]


@given(st.integers(0, 30))
def test_generated_names_never_collide(n: int):
    """Apps created without names always get a fresh, valid name."""
    state = State()
    for i in range(n):
        created(state, f"x{i}")
    seen = set(state.app_ids_by_name)
    for _ in range(5):
        (event,) = create_app(state, CreateApp(id=f"g{len(seen)}", now=T0))
        assert isinstance(event, AppCreated) and event.app.name not in seen
        apply(state, event, T0)
        seen.add(event.app.name)


def test_update_replaces_meta_keeps_it_on_none_and_bumps_updated_at():
    """Meta is replaced whole; None leaves it; updated_at is the command's time."""
    state, _ = created(State(), "web", meta={"a": "1"})
    later = T0 + timedelta(seconds=5)
    (event,) = update_app(state, UpdateApp(app="web", now=later, meta={"b": "2"}))
    assert (
        isinstance(event, AppUpdated)
        and event.app.meta == {"b": "2"}
        and event.app.updated_at == later
    )
    (event,) = update_app(state, UpdateApp(app="web", now=later, deploy_timeout=15))
    assert event.app.meta == {"a": "1"} and event.app.deploy_timeout == 15  # type: ignore[union-attr]


def test_set_release_needs_a_known_release_and_remembers_the_previous():
    """An unknown release is Flynn's 400; a known one yields app_release with prev_release."""
    state, _ = created(State(), "web")
    with pytest.raises(ValidationError, match="could not find release with ID nope"):
        set_app_release(state, SetAppRelease("web", "nope", T0))
    first, second = (Release(id=i, created_at=T0) for i in ("r1", "r2"))
    for release in (first, second):
        apply(state, ReleaseCreated(release), T0)
    (event,) = set_app_release(state, SetAppRelease("web", "r1", T0))
    apply(state, event, T0)
    (event,) = set_app_release(state, SetAppRelease("web", "r2", T0))
    assert (
        isinstance(event, AppReleaseSet) and event.prev_release == first and event.release == second
    )


def test_delete_decides_the_whole_cascade_and_refuses_protected_apps():
    """Deleting an app yields its route deletions then app_deletion; a protected app refuses."""
    state = State()
    for event in create_app(
        state, CreateApp(id="a", now=T0, name="web", default_route_domain="d.io", route_id="r")
    ):
        apply(state, event, T0)
    events = delete_app(state, DeleteApp("web", T0))
    assert [type(e) for e in events] == [RouteDeleted, AppDeleted]
    state, _ = created(state, "safe", protected=True)
    with pytest.raises(ValidationError) as info:
        delete_app(state, DeleteApp("safe", T0))
    assert info.value.field == "protected"
    with pytest.raises(NotFoundError):
        delete_app(state, DeleteApp("missing", T0))


@given(uuids)
def test_deciders_are_pure(app_id: str):
    """Deciding twice against the same state gives equal events and leaves the state alone."""
    state, _ = created(State(), "web")
    before = dict(state.apps)
    command = UpdateApp(app="web", now=T0, meta={"k": app_id})
    assert update_app(state, command) == update_app(state, command)
    assert state.apps == before
