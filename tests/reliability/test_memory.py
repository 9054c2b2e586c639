"""Memory of a real `serve` process while 1 GiB of large writes goes through it: it stays under
the README's budget (400 MB plus the folded state, here one app), during and afterwards."""

import asyncio
import io
from typing import Any

import aiohttp
import orjson
import pytest

from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, Service

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

MB = 1024 * 1024
#: README, "Security and limits": resident memory under 400 MB plus the folded state.
BUDGET = 400 * MB
WRITES = 1024  # of 1 MiB each
CLIENTS = 8


def meta_of(n: int) -> dict[str, Any]:
    """An app's meta of 1 MiB (16 values of 64 KiB, the largest a value may be), new each time."""
    return {"meta": {f"k{i}": chr(97 + (n + i) % 26) * 65536 for i in range(16)}}


async def test_a_gib_of_large_writes_stays_within_the_memory_budget(
    service: Service, session: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    """Each write replaces the app's meta, so the state does not grow; nor may the service."""
    async with session.post(f"{service.url}/apps", json={"name": "big"}, headers=AUTH) as r:
        assert r.status == 200
    start = service.rss_bytes()
    samples: list[int] = []
    todo = list(range(WRITES))

    async def client() -> None:
        while todo:
            body = io.BytesIO(orjson.dumps(meta_of(todo.pop())))
            async with session.post(
                f"{service.url}/apps/big/meta", data=body, headers=AUTH | JSON
            ) as r:
                assert r.status == 200, await r.text()

    async def sample() -> None:
        while True:
            samples.append(service.rss_bytes())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*[client() for _ in range(CLIENTS)])
    await asyncio.sleep(2)
    sampler.cancel()
    idle = service.rss_bytes()
    peak = max(samples)
    report(request, "RSS before 1 GiB of 1 MiB writes (MB)", start // MB)
    report(request, "RSS peak during them (MB)", peak // MB)
    report(request, "RSS afterwards (MB)", idle // MB)
    assert peak < BUDGET and idle < BUDGET
