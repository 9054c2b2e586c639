"""Providers and resources over HTTP (Flynn: controller/provider.go, controller/resource.go).

Provisioning calls the provider before the command that records the resource; if the
recording fails, the resource is deprovisioned again (Flynn leaks it: "TODO rollback").
"""

from __future__ import annotations

import logging

from aiohttp import web

from commands.errors import NotFoundError, UpstreamError
from commands.providers import (
    CreateProvider,
    DeleteResource,
    DeleteResources,
    ProvisionResource,
    PutResource,
    resolve_apps,
)
from controller import keys
from controller.handlers.common import dispatch, found, model, path_app, path_uuid, payload
from controller.http import json_response, read_json
from controller.visibility import limited_to, only_apps, sees_resource
from domain.clock import now
from domain.events import ProviderCreated, ResourceCreated, ResourceDeleted
from domain.ids import new_id
from domain.objects import Provider, Resource
from eventstore.record import RecordedEvent
from projections.providers import (
    all_providers,
    app_resources,
    exclusive_resources,
    find_provider,
    provider_resource,
    provider_resources,
)
from service.providers import Address, ProviderClient

logger = logging.getLogger(__name__)


def providers_client(request: web.Request) -> ProviderClient:
    return request.app[keys.PROVIDERS]


def here(request: web.Request) -> Address:
    """Where the request came in: no provider URL may point back there."""
    return request.transport.get_extra_info("sockname") if request.transport else None


def path_provider(request: web.Request) -> Provider:
    """The provider named by `{provider}` (id or name), or a bare 404."""
    provider: Provider = found(find_provider(model(request).state, request.match_info["provider"]))
    return provider


def path_resource(request: web.Request, provider: Provider) -> Resource:
    resource_id = path_uuid(request, "resource")
    resource: Resource = found(provider_resource(model(request).state, provider.id, resource_id))
    if not sees_resource(limited_to(request), resource):
        raise NotFoundError()
    return resource


async def create_provider(request: web.Request) -> web.Response:
    doc = await read_json(request)
    command = CreateProvider.from_json(doc, new_id=new_id(), now=now())
    return json_response(payload(await dispatch(request, command), ProviderCreated))


async def list_providers(request: web.Request) -> web.Response:
    read_model = model(request)
    return json_response(
        read_model.cached_list("providers", lambda: all_providers(read_model.state))
    )


async def get_provider(request: web.Request) -> web.Response:
    return json_response(model(request).encode(path_provider(request)))


async def provision_resource(request: web.Request) -> web.Response:
    doc = await read_json(request)
    provider = path_provider(request)
    # Unknown apps are refused before anything is provisioned.
    apps = resolve_apps(model(request).state, doc.get("apps") or ())
    only_apps(request, apps, "provision resources")
    external_id, env = await providers_client(request).provision(
        provider, doc.get("config"), here=here(request)
    )
    command = ProvisionResource(new_id(), now(), provider.id, external_id, env, apps)
    records = await _record_or_deprovision(request, command, provider)
    return json_response(payload(records, ResourceCreated))


async def _record_or_deprovision(
    request: web.Request, command: ProvisionResource, provider: Provider
) -> list[RecordedEvent]:
    try:
        return await dispatch(request, command)
    except Exception:
        # Not recorded (log unavailable, app deleted meanwhile, ...): give it back.
        resource = Resource(command.id, provider.id, command.now, command.external_id)
        try:
            await providers_client(request).deprovision(provider, resource, here=here(request))
        except UpstreamError as exc:
            # Nothing else knows about it any more: an operator has to.
            logger.error("resource %s at %s leaked: %s", command.external_id, provider.name, exc)
        raise


async def put_resource(request: web.Request) -> web.Response:
    doc = await read_json(request)
    provider = path_provider(request)
    command = PutResource.from_json(
        doc, id=path_uuid(request, "resource"), provider_id=provider.id, now=now()
    )
    if limited_to(request) is not None:  # its apps, before and after, must be the key's
        state = model(request).state
        before = state.resources.get(command.id)
        if before is not None and not sees_resource(limited_to(request), before):
            raise NotFoundError()
        after = resolve_apps(state, command.apps)
        only_apps(request, [*after, *(before.apps if before else ())], "register resources")
    return json_response(payload(await dispatch(request, command), ResourceCreated))


async def list_resources(request: web.Request) -> web.Response:
    resources = provider_resources(model(request).state, path_provider(request).id)
    apps = limited_to(request)
    resources = [r for r in resources if sees_resource(apps, r)]
    return json_response(model(request).encode_list(resources))


async def get_resource(request: web.Request) -> web.Response:
    return json_response(model(request).encode(path_resource(request, path_provider(request))))


async def delete_resource(request: web.Request) -> web.Response:
    provider = path_provider(request)
    resource = path_resource(request, provider)
    only_apps(request, resource.apps, "delete resources")
    # A failure leaves everything in place.
    await providers_client(request).deprovision(provider, resource, here=here(request))
    records = await dispatch(request, DeleteResource(resource.id, now()))
    return json_response(payload(records, ResourceDeleted))  # Flynn: the deleted resource


async def list_app_resources(request: web.Request) -> web.Response:
    app = path_app(request)
    return json_response(model(request).encode_list(app_resources(model(request).state, app.id)))


async def deprovision_app_resources(request: web.Request, app_id: str) -> tuple[str, ...]:
    """Deprovision the resources only this app uses, for its deletion; returns their ids.

    If a provider fails, the resources deprovisioned before it are recorded as deleted and
    the request fails with a 502, leaving the app and the rest: a retry finishes the job.
    Flynn's deletion job retries from scratch and deprovisions the first ones again.
    """
    state = model(request).state
    resources = exclusive_resources(state, app_id)
    done, failure = await providers_client(request).deprovision_each(
        state.providers, resources, here=here(request)
    )
    if failure is None:
        return tuple(done)
    await dispatch(request, DeleteResources(tuple(done), now()), "app_deletion")
    raise UpstreamError(
        f"app deletion stopped: {failure.message} ({len(done)} of {len(resources)} resources "
        "deprovisioned and deleted; retry to delete the rest and the app)"
    )
