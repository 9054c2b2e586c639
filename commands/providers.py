"""Provider and resource commands and their deciders (Flynn: controller/provider.go, resource.go).

Provisioning and deprovisioning call the provider first (in the HTTP handler); these
commands record what the provider did.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from commands.errors import AlreadyExistsError, NotFoundError, ValidationError
from commands.types import handler, handlers
from domain.events import Event, ProviderCreated, ResourceCreated, ResourceDeleted
from domain.ids import given_id
from domain.objects import JSON, Provider, Resource
from projections.apps import find_app
from projections.state import State


@attrs.frozen
class CreateProvider:
    id: str
    now: datetime
    name: str
    url: str

    @classmethod
    def from_json(cls, doc: JSON, *, new_id: str, now: datetime) -> CreateProvider:
        """From a schema-checked body (name and url required); timestamps are the server's."""
        return cls(id=given_id(doc, new_id), now=now, name=doc["name"], url=doc["url"])


@attrs.frozen
class ProvisionResource:
    """Record a resource the provider has just provisioned (apps already resolved to ids)."""

    id: str
    now: datetime
    provider_id: str
    external_id: str
    env: dict[str, str] = attrs.field(factory=dict)
    apps: tuple[str, ...] = ()


@attrs.frozen
class PutResource:
    """Register an existing resource, with no provider call (Flynn: controller/resource.go)."""

    id: str
    now: datetime
    provider_id: str
    external_id: str = ""
    env: dict[str, str] = attrs.field(factory=dict)
    apps: tuple[str, ...] = ()  # ids or names

    @classmethod
    def from_json(cls, doc: JSON, *, id: str, provider_id: str, now: datetime) -> PutResource:
        """`id` and `provider` come from the path; created_at is the server's."""
        return cls(
            id=id,
            now=now,
            provider_id=provider_id,
            external_id=doc.get("external_id") or "",
            env=doc.get("env") or {},
            apps=tuple(doc.get("apps") or ()),
        )


@attrs.frozen
class DeleteResource:
    """Record a resource deprovisioned at its provider as deleted."""

    resource_id: str
    now: datetime


@attrs.frozen
class DeleteResources:
    """Record resources already deprovisioned as deleted, skipping any already gone: what a
    failed app deletion did before its provider failed, so that a retry does only the rest."""

    resource_ids: tuple[str, ...]
    now: datetime


def resolve_apps(
    state: State, refs: Iterable[str], unknown: str = "could not find app with ID {}"
) -> tuple[str, ...]:
    """App ids for app ids or names, in order, without repeats; an unknown app is a 400
    on the field `apps`, its message `unknown` with the reference in it."""
    ids: dict[str, None] = {}
    for ref in refs:
        app = find_app(state, ref)
        if app is None:
            raise ValidationError("apps", unknown.format(ref))
        ids[app.id] = None
    return tuple(ids)


def create_provider(state: State, cmd: CreateProvider) -> list[Event]:
    # Flynn: name and url are UNIQUE columns, and a duplicate is its 500; ours is a 409.
    if cmd.name in state.provider_ids_by_name:
        raise AlreadyExistsError(f'provider "{cmd.name}" already exists')
    if cmd.url in state.provider_ids_by_url:
        raise AlreadyExistsError(f'provider with url "{cmd.url}" already exists')
    if cmd.id in state.providers:
        raise AlreadyExistsError(f'provider with id "{cmd.id}" already exists')
    return [ProviderCreated(Provider(cmd.id, cmd.name, cmd.url, cmd.now, cmd.now))]


def _created(state: State, cmd: ProvisionResource | PutResource) -> list[Event]:
    if cmd.provider_id not in state.providers:
        raise NotFoundError(f"provider {cmd.provider_id} not found")
    resource = Resource(
        id=cmd.id,
        provider_id=cmd.provider_id,
        created_at=cmd.now,
        external_id=cmd.external_id,
        env=cmd.env,
        apps=resolve_apps(state, cmd.apps),
    )
    # HEAD: one event per linked app, and one without an app when none is linked.
    return [ResourceCreated(resource, a) for a in resource.apps] or [ResourceCreated(resource)]


def provision_resource(state: State, cmd: ProvisionResource) -> list[Event]:
    return _created(state, cmd)


def put_resource(state: State, cmd: PutResource) -> list[Event]:
    # Flynn: a plain INSERT, so an existing id is its 500; ours is a 409. A deleted
    # resource's id may be registered again: the log keeps both lives.
    if cmd.id in state.resources:
        raise AlreadyExistsError(f'resource "{cmd.id}" already exists')
    return _created(state, cmd)


def resource_deleted(resource: Resource) -> list[Event]:
    """One `resource_deletion` per linked app, or one without an app (HEAD)."""
    return [ResourceDeleted(resource, a) for a in resource.apps] or [ResourceDeleted(resource)]


def delete_resource(state: State, cmd: DeleteResource) -> list[Event]:
    resource = state.resources.get(cmd.resource_id)
    if resource is None:
        raise NotFoundError(f"resource {cmd.resource_id} not found")
    return resource_deleted(resource)


def delete_resources(state: State, cmd: DeleteResources) -> list[Event]:
    events: list[Event] = []
    for resource_id in cmd.resource_ids:
        resource = state.resources.get(resource_id)
        if resource is not None:
            events += resource_deleted(resource)
    return events


HANDLERS = handlers(
    handler(CreateProvider, create_provider),
    handler(ProvisionResource, provision_resource),
    handler(PutResource, put_resource),
    handler(DeleteResource, delete_resource),
    handler(DeleteResources, delete_resources),
)
