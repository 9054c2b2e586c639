"""Calls to resource providers (outside the decision: the outcome is then recorded).

Flynn turns every provider failure into a 500 "Something went wrong"; here it is an
UpstreamError (502) that says which provider call failed and how.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from commands.errors import UpstreamError
from domain.objects import Provider, Resource
from service.log_format import escape

logger = logging.getLogger(__name__)

#: A provider's answer larger than this is refused (it should be a few hundred bytes).
MAX_PROVIDER_RESPONSE = 1024 * 1024
#: How many bytes of a failing provider's answer an error message quotes: enough to say
#: what went wrong, too few to relay a page of whatever the URL serves to the client.
QUOTED_ANSWER = 64


#: Where a request came in (its socket's name): (host, port, ...) for an IP socket, a path
#: for a Unix one, None for none.
Address = tuple[Any, ...] | str | None


@contextlib.asynccontextmanager
async def provider_client(timeout: float) -> AsyncIterator[ProviderClient]:
    """One client session for every provider call; `timeout` (seconds) bounds each."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        yield ProviderClient(session, timeout)


class ProviderClient:
    """Provisions and deprovisions resources at their providers.

    Each call is given the address the service was called on (`here`): a provider URL
    that points back at it is refused.
    """

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    async def provision(
        self, provider: Provider, config: Any, *, here: Address
    ) -> tuple[str, dict[str, str]]:
        """POST the config to the provider; it answers {"id": external id, "env": {...}}."""
        payload = await self._call("POST", provider.url, here, orjson.dumps(config or {}))
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

    async def deprovision(self, provider: Provider, resource: Resource, *, here: Address) -> None:
        """DELETE <url>?id=<external id>; the provider must answer 200."""
        separator = "&" if "?" in provider.url else "?"
        url = f"{provider.url}{separator}id={quote(resource.external_id, safe='')}"
        await self._call("DELETE", url, here)

    async def deprovision_each(
        self,
        providers: Mapping[str, Provider],
        resources: Sequence[Resource],
        *,
        here: Address,
    ) -> tuple[list[str], UpstreamError | None]:
        """Deprovision in order, stopping at the first failure: the ids done, and that failure.

        The caller must record the ones done even when one failed: they are gone at their
        providers, and a retry must not ask for them again.
        """
        done: list[str] = []
        for resource in resources:
            provider = providers.get(resource.provider_id)
            try:
                if provider is not None:
                    await self.deprovision(provider, resource, here=here)
            except UpstreamError as exc:
                return done, exc
            done.append(resource.id)
        return done, None

    async def _call(self, method: str, url: str, here: Address, body: bytes | None = None) -> bytes:
        await refuse_own_address(here, url)
        # Only these headers: never the client's, never our key.
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            # No redirects: a provider must answer itself, not send us elsewhere (around the
            # check above, or to anything else this machine can reach).
            async with self.session.request(
                method, url, data=body, headers=headers, allow_redirects=False
            ) as response:
                payload = await _read_limited(response, url)
        except TimeoutError as exc:
            raise UpstreamError(
                f"resource provider did not answer {method} {url} within {self.timeout:g}s"
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


async def refuse_own_address(here: Address, url: str) -> None:
    """Refuse an outbound call (to a resource provider) that would reach this service itself.

    The call carries none of our credentials, so it could do no more than any anonymous
    client; refusing it keeps a provider URL from turning the service against itself.
    """
    if not isinstance(here, tuple):
        return  # not an IP socket (a Unix one): a URL cannot name it
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # not a port: the call fails by itself
    if port != here[1] or not parts.hostname:
        return
    own = ipaddress.ip_address(here[0])
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError:
        return  # unresolvable: the call fails by itself
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address == own or address.is_loopback or address.is_unspecified:
            raise UpstreamError(f"resource provider URL {url} points at this controller; refused")


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
