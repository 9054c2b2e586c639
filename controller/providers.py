"""Calls to resource providers (outside the decision: the outcome is then recorded).

Flynn turns every provider failure into a 500 "Something went wrong"; here it is an
UpstreamError (502) that says which provider call failed and how.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from commands.errors import UpstreamError
from controller import keys
from controller.access_log import escape
from controller.limits import refuse_own_address
from domain.objects import Provider, Resource

logger = logging.getLogger(__name__)

HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
#: A provider's answer larger than this is refused (it should be a few hundred bytes).
MAX_PROVIDER_RESPONSE = 1024 * 1024
#: How many bytes of a failing provider's answer an error message quotes: enough to say
#: what went wrong, too few to relay a page of whatever the URL serves to the client.
QUOTED_ANSWER = 64


async def http_client_context(app: web.Application) -> AsyncIterator[None]:
    """One client session for every provider call; Settings.provider_timeout bounds each."""
    timeout = aiohttp.ClientTimeout(total=app[keys.SETTINGS].provider_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[HTTP_CLIENT] = session
        yield


async def _call(request: web.Request, method: str, url: str, body: bytes | None = None) -> bytes:
    await refuse_own_address(request, url)
    session = request.app[HTTP_CLIENT]
    # Only these headers: never the client's, never our key.
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        # No redirects: a provider must answer itself, not send us elsewhere (around the
        # check above, or to anything else this machine can reach).
        async with session.request(
            method, url, data=body, headers=headers, allow_redirects=False
        ) as response:
            payload = await _read_limited(response, url)
    except TimeoutError as exc:
        seconds = request.app[keys.SETTINGS].provider_timeout
        raise UpstreamError(
            f"resource provider did not answer {method} {url} within {seconds:g}s"
        ) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"resource provider unreachable ({method} {url}): {exc}") from exc
    if response.status != 200:
        # Flynn: controller/resource.go wants exactly 200 ("unexpected status code").
        quoted = _quote(payload)
        raise UpstreamError(
            f"resource provider answered {response.status} to {method} {url}"
            + (f": {quoted}" if quoted else "")
        )
    return payload


def _quote(payload: bytes) -> str:
    """The start of an answer, for an error message: at most QUOTED_ANSWER bytes, its
    control characters escaped, "…" when cut."""
    text = escape(payload[:QUOTED_ANSWER].decode("utf-8", "replace").strip())
    return text + "…" if len(payload.strip()) > QUOTED_ANSWER else text


async def _read_limited(response: aiohttp.ClientResponse, url: str) -> bytes:
    # A single read() returns whatever has arrived so far, not the whole body.
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_PROVIDER_RESPONSE:
            raise UpstreamError(f"resource provider at {url} answered more than 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def provision(
    request: web.Request, provider: Provider, config: Any
) -> tuple[str, dict[str, str]]:
    """POST the config to the provider; it answers {"id": external id, "env": {...}}."""
    payload = await _call(request, "POST", provider.url, orjson.dumps(config or {}))
    try:
        answer = orjson.loads(payload)
        external_id, env = answer["id"], answer.get("env") or {}
        if not isinstance(external_id, str) or not isinstance(env, dict):
            raise TypeError
        return external_id, {str(k): str(v) for k, v in env.items()}
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise UpstreamError(
            f"resource provider {provider.name} answered an invalid resource"
        ) from exc


async def deprovision(request: web.Request, provider: Provider, resource: Resource) -> None:
    """DELETE <url>?id=<external id>; the provider must answer 200."""
    separator = "&" if "?" in provider.url else "?"
    url = f"{provider.url}{separator}id={quote(resource.external_id, safe='')}"
    await _call(request, "DELETE", url)


async def deprovision_each(
    request: web.Request, resources: Sequence[Resource]
) -> tuple[list[str], UpstreamError | None]:
    """Deprovision in order, stopping at the first failure: the ids done, and that failure.

    The caller must record the ones done even when one failed: they are gone at their
    providers, and a retry must not ask for them again.
    """
    state = request.app[keys.READ_MODEL].state
    done: list[str] = []
    for resource in resources:
        provider = state.providers.get(resource.provider_id)
        try:
            if provider is not None:
                await deprovision(request, provider, resource)
        except UpstreamError as exc:
            return done, exc
        done.append(resource.id)
    return done, None
