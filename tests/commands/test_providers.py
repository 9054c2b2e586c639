"""Provider and resource deciders: what is recorded once a provider has answered."""

from datetime import UTC, datetime

import pytest

from commands.apps import CreateApp, create_app
from commands.errors import AlreadyExistsError, NotFoundError, ValidationError
from commands.providers import (
    CreateProvider,
    DeleteResources,
    ProvisionResource,
    PutResource,
    create_provider,
    delete_resources,
    provision_resource,
    put_resource,
)
from domain.events import Event, ResourceCreated, ResourceDeleted
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APP = "00000000-0000-4000-8000-00000000000a"
PROVIDER = "00000000-0000-4000-8000-0000000000b0"


def resource_id(n: int) -> str:
    return f"00000000-0000-4000-9000-{n:012d}"


def fold(state: State, events: list[Event]) -> list[Event]:
    for event in events:
        apply(state, event, T0)
    return events


def with_provider() -> State:
    state = State()
    fold(state, create_app(state, CreateApp(APP, T0, "web")))
    fold(state, create_provider(state, CreateProvider(PROVIDER, T0, "pg", "http://pg/db")))
    return state


@pytest.mark.parametrize("name, url", [("pg", "http://other/db"), ("other", "http://pg/db")])
def test_a_provider_name_or_url_is_taken_once(name: str, url: str):
    """A second provider with the same name or url is AlreadyExistsError (409)."""
    with pytest.raises(AlreadyExistsError):
        create_provider(with_provider(), CreateProvider(resource_id(9), T0, name, url))


def test_apps_are_linked_once_each_by_name_or_id():
    """ "web" and its id name one app: it is linked once, with one event."""
    state = with_provider()
    command = ProvisionResource(resource_id(1), T0, PROVIDER, "/db/1", {}, ("web", APP))
    (event,) = provision_resource(state, command)
    assert isinstance(event, ResourceCreated)
    assert (event.app, event.resource.apps) == (APP, (APP,))


def test_a_resource_for_an_app_deleted_meanwhile_is_refused():
    """The app is checked again at decision time (the handler then deprovisions)."""
    state = State()
    fold(state, create_provider(state, CreateProvider(PROVIDER, T0, "pg", "http://pg/db")))
    with pytest.raises(ValidationError):
        provision_resource(state, ProvisionResource(resource_id(1), T0, PROVIDER, "x", {}, (APP,)))


def test_registering_needs_a_known_provider_and_a_new_id():
    """PUT with an unknown provider is NotFound; with a live resource's id, AlreadyExists."""
    state = with_provider()
    with pytest.raises(NotFoundError):
        put_resource(state, PutResource(resource_id(1), T0, resource_id(99)))
    fold(state, put_resource(state, PutResource(resource_id(1), T0, PROVIDER)))
    with pytest.raises(AlreadyExistsError):
        put_resource(state, PutResource(resource_id(1), T0, PROVIDER))


def test_recording_deprovisioned_resources_skips_those_already_gone():
    """A retried partial deletion records each resource once, one event per linked app."""
    state = with_provider()
    fold(state, put_resource(state, PutResource(resource_id(1), T0, PROVIDER, apps=(APP,))))
    fold(state, put_resource(state, PutResource(resource_id(2), T0, PROVIDER)))
    command = DeleteResources((resource_id(1), resource_id(2)), T0)
    events = fold(state, delete_resources(state, command))
    deleted = [e for e in events if isinstance(e, ResourceDeleted)]
    assert deleted == events and [e.app for e in deleted] == [APP, None]
    assert delete_resources(state, command) == []
