"""Read-side queries on providers and resources, as functions of State (newest first)."""

from __future__ import annotations

from domain.objects import Provider, Resource
from projections.memory import newest_first
from projections.state import State


def _by_created(obj: Provider | Resource) -> tuple[object, str]:
    return (obj.created_at, obj.id)


def providers(state: State) -> list[Provider]:
    """Every provider, newest first (Flynn: provider_list, created_at DESC)."""
    return newest_first(state.providers.values(), _by_created)


def provider_resources(state: State, provider_id: str) -> list[Resource]:
    """The live resources of a provider, newest first."""
    ids = state.provider_resources.get(provider_id, {})
    return newest_first((state.resources[r] for r in ids), _by_created)


def app_resources(state: State, app_id: str) -> list[Resource]:
    """The live resources linked to an app, newest first."""
    ids = state.app_resources.get(app_id, {})
    return newest_first((state.resources[r] for r in ids), _by_created)


def provider_resource(state: State, provider_id: str, resource_id: str) -> Resource | None:
    """A live resource of this provider. Flynn fetches it by id alone, so a resource of
    another provider would be deprovisioned through the wrong provider; here it is not found."""
    resource = state.resources.get(resource_id)
    if resource is None or resource.provider_id != provider_id:
        return None
    return resource
