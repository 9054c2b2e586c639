"""Provider and resource queries over State: lookups and lists, newest first."""

from __future__ import annotations

from domain.ids import canonical_uuid
from domain.objects import Provider, Resource
from projections.order import newest_first
from projections.state import State


def find_provider(state: State, ref: str) -> Provider | None:
    """A provider by id or name (the same rule as apps: a uuid-shaped ref is an id first)."""
    provider_id = canonical_uuid(ref)
    if provider_id is not None and provider_id in state.providers:
        return state.providers[provider_id]
    found = state.provider_ids_by_name.get(ref)
    return None if found is None else state.providers[found]


def all_providers(state: State) -> list[Provider]:
    """Every provider, newest first (Flynn: providerListQuery)."""
    return newest_first(state.providers.values())


def resource(state: State, resource_id: str) -> Resource | None:
    """A live resource (a deleted one is not found)."""
    return state.resources.get(resource_id)


def provider_resources(state: State, provider_id: str) -> list[Resource]:
    """The live resources of a provider, newest first (Flynn: resourceListByProviderQuery).

    The index keeps a resource under every provider it was recorded with: one recorded
    again under another provider is listed under that one only.
    """
    resources = state.resources
    listed = state.provider_resources.get(provider_id, {})
    return newest_first(
        resources[r] for r in listed if r in resources and resources[r].provider_id == provider_id
    )


def app_resources(state: State, app_id: str) -> list[Resource]:
    """The live resources linked to an app, newest first (Flynn: resourceListByAppQuery)."""
    return newest_first(state.resources[r] for r in state.app_resources.get(app_id, {}))


def provider_resource(state: State, provider_id: str, resource_id: str) -> Resource | None:
    """A live resource of this provider. Flynn fetches it by id alone, so a resource of
    another provider would be deprovisioned through the wrong provider; here it is not found."""
    found = state.resources.get(resource_id)
    if found is None or found.provider_id != provider_id:
        return None
    return found


def exclusive_resources(state: State, app_id: str) -> list[Resource]:
    """The resources linked to this app only: deleting the app deprovisions them (Flynn)."""
    linked = state.app_resources.get(app_id, {})
    return [state.resources[r] for r in linked if state.resources[r].apps == (app_id,)]
