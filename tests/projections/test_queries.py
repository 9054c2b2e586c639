"""The query layer's answers where the fold's indexes hold more than the live objects."""

from datetime import UTC, datetime, timedelta

from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    Event,
    ProviderCreated,
    ReleaseCreated,
    ReleaseDeleted,
    ResourceCreated,
    ResourceDeleted,
)
from domain.objects import App, Provider, Release, Resource
from projections.apps import find_app, find_app_or_deleted
from projections.order import newest_first
from projections.providers import provider_resources
from projections.releases import app_releases
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def folded(*events: Event) -> State:
    state = State()
    for n, event in enumerate(events):
        apply(state, event, T0 + timedelta(seconds=n))
    return state


def test_a_deleted_release_is_not_listed_under_an_app_that_still_lists_it():
    """Whatever an event said about the apps left using it, a deleted release is listed
    nowhere (Flynn's list asks `deleted_at IS NULL`), and listing does not fail."""
    owner, user = App("a", "owner", T0, T0), App("b", "user", T0, T0)
    gone, kept = Release("r1", T0, app_id="a"), Release("r2", T0 + timedelta(1), app_id="a")
    state = folded(
        AppCreated(owner),
        AppCreated(user),
        ReleaseCreated(gone),
        ReleaseCreated(kept),
        AppReleaseSet("b", gone),
        AppReleaseSet("b", kept, gone),
        ReleaseDeleted("a", "r1", remaining_apps=()),
    )
    assert "r1" in state.app_releases["b"]
    assert app_releases(state, "b") == [kept]
    assert app_releases(state, "a") == [kept]


def test_a_resource_recorded_again_under_another_provider_is_listed_under_that_one_only():
    """The provider index keeps the first provider; the list follows the resource's own."""
    first = Provider("p1", "one", "http://one", T0, T0)
    second = Provider("p2", "two", "http://two", T0, T0)
    moved = Resource("x", "p2", T0)
    state = folded(
        ProviderCreated(first),
        ProviderCreated(second),
        ResourceCreated(Resource("x", "p1", T0)),
        ResourceCreated(moved),
    )
    assert provider_resources(state, "p1") == []
    assert provider_resources(state, "p2") == [moved]
    state = folded(
        ProviderCreated(first),
        ProviderCreated(second),
        ResourceCreated(Resource("x", "p1", T0)),
        ResourceCreated(moved),
        ResourceDeleted(moved),
    )
    assert provider_resources(state, "p1") == provider_resources(state, "p2") == []


def test_a_deleted_app_is_reached_by_its_id_in_any_case_but_never_by_its_name():
    """Only find_app_or_deleted finds a deleted app, by id (upper case too), never by name;
    a live app of that name is found instead."""
    gone_id = "0b0e3a5c-7c1e-4f6a-9d2b-1a2b3c4d5e6f"
    gone, live = App(gone_id, "shop", T0, T0), App("b", "other", T0, T0)
    state = folded(AppCreated(gone), AppDeleted(gone_id), AppCreated(live))
    assert find_app(state, gone_id) is None
    for ref in (gone_id, gone_id.upper(), gone_id.replace("-", "")):
        found = find_app_or_deleted(state, ref)
        assert found is not None and found.id == gone_id
    assert find_app_or_deleted(state, "shop") is None
    assert find_app_or_deleted(state, "other") == live


def test_newest_first_breaks_ties_by_id_whatever_the_input_order():
    """Objects created at the same moment come in descending id order, from any order."""
    releases = [Release(i, T0) for i in ("b", "c", "a")] + [Release("z", T0 - timedelta(1))]
    assert [r.id for r in newest_first(releases)] == ["c", "b", "a", "z"]
    assert newest_first(reversed(releases)) == newest_first(releases)
