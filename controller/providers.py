"""Calls to resource providers (outside the decision: the outcome is then recorded)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from commands.apps import exclusive_resources
from commands.errors import UpstreamError
from controller import keys
from eventstore.objects import Provider, Resource

logger = logging.getLogger(__name__)

HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
#: A provider's answer larger than this is refused (it should be a few hundred bytes).
MAX_PROVIDER_RESPONSE = 1024 * 1024


async def http_client_context(app: web.Application) -> Any:
    timeout = aiohttp.ClientTimeout(total=app[keys.SETTINGS].provider_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[HTTP_CLIENT] = session
        yield


async def _call(request: web.Request, method: str, url: str, body: bytes | None = None) -> bytes:
    session = request.app[HTTP_CLIENT]
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        async with session.request(method, url, data=body, headers=headers) as response:
            payload = await response.content.read(MAX_PROVIDER_RESPONSE + 1)
            if len(payload) > MAX_PROVIDER_RESPONSE:
                raise UpstreamError(f"resource provider at {url} answered more than 1 MiB")
            if response.status != 200:
                raise UpstreamError(f"resource provider answered {response.status} to {method} {url}")
            return payload
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"resource provider unreachable ({method} {url}): {exc!r}") from exc


async def provision(request: web.Request, provider: Provider, config: Any) -> tuple[str, dict[str, str]]:
    """POST the config to the provider; it answers {"id": external id, "env": {...}}."""
    payload = await _call(request, "POST", provider.url, orjson.dumps(config or {}))
    try:
        answer = orjson.loads(payload)
        external_id, env = answer["id"], answer.get("env") or {}
        if not isinstance(external_id, str) or not isinstance(env, dict):
            raise TypeError
        return external_id, {str(k): str(v) for k, v in env.items()}
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise UpstreamError(f"resource provider {provider.name} answered an invalid resource") from exc


async def deprovision(request: web.Request, provider: Provider, resource: Resource) -> None:
    """DELETE <url>?id=<external id>; the provider must answer 200."""
    url = f"{provider.url}?id={quote(resource.external_id, safe='')}"
    await _call(request, "DELETE", url)


async def deprovision_exclusive_resources(request: web.Request, app_id: str) -> list[str]:
    """Deprovision the resources only this app uses; returns their ids (all or an error)."""
    state = request.app[keys.READ_MODEL].state
    done = []
    for resource_id in exclusive_resources(state, app_id):
        resource = state.resources[resource_id]
        provider = state.providers.get(resource.provider_id)
        if provider is not None:
            await deprovision(request, provider, resource)
        done.append(resource_id)
    return done
