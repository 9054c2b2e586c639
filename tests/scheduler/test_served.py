"""kill -9 of a scheduling service: the next one adopts its jobs; no orphan, no duplicate."""

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.host.machine import WEB_PY, make_artifact, reachable_dir, running
from tests.scheduler.served import KEY, Served

pytestmark = pytest.mark.postgres

AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY)}
WORKER = ["sh", "-c", "while true; do echo working; sleep 0.2; done"]


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir("evenflow-served-") as path:
        yield path


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json() if response.content_length else None


async def job_states(http: aiohttp.ClientSession, url: str) -> dict[str, tuple[str, str]]:
    """Job id -> (type, state) of the app's jobs."""
    jobs = await call(http, "GET", f"{url}/apps/shop/jobs")
    return {j["id"]: (j["type"], j["state"]) for j in jobs}


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


def counts(states: dict[str, tuple[str, str]], state: str = "up") -> dict[str, int]:
    found: dict[str, int] = {}
    for kind, now in states.values():
        if now == state:
            found[kind] = found.get(kind, 0) + 1
    return found


async def test_a_killed_service_is_followed_by_one_that_adopts_its_jobs(
    make_database: Callable[[], Awaitable[str]], root: Path
):
    """kill -9 leaves the jobs running; a job dies meanwhile; the next service adopts the
    others (same processes), reports the dead one crashed and replaces it; deleting the app
    then leaves no process behind."""
    database, data, output = await make_database(), root / "data", root / "service.log"
    first = Served(database, data, output)
    second: Served | None = None
    try:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            url = first.url
            await call(http, "POST", f"{url}/apps", {"name": "shop"})
            uri = make_artifact(data / "artifacts", **{"web.py": WEB_PY}).as_uri()
            artifact = await call(http, "POST", f"{url}/artifacts", {"type": "file", "uri": uri})
            web = {"cmd": ["python3", "web.py"], "ports": [{"proto": "tcp"}]}
            processes = {"web": web, "worker": {"cmd": WORKER}}
            release = await call(http, "POST", f"{url}/releases",
                                 {"artifact": artifact["id"], "processes": processes})  # fmt: skip
            await call(http, "PUT", f"{url}/apps/shop/release", {"id": release["id"]})
            formation = f"{url}/apps/shop/formations/{release['id']}"
            await call(http, "PUT", formation, {"processes": {"web": 1, "worker": 2}})

            async def all_up() -> bool:
                return counts(await job_states(http, url)) == {"web": 1, "worker": 2}

            await until(all_up)
            before = running(data / "host")
            dead = next(
                j for j, (kind, _) in (await job_states(http, url)).items() if kind == "worker"
            )
            first.kill()
            assert running(data / "host") == before, output.read_text()
            os.killpg(before[dead], signal.SIGKILL)  # a job dies while no service runs

            second = Served(database, data, output)
            url = second.url

            async def settled() -> bool:
                states = await job_states(http, url)
                return counts(states) == {"web": 1, "worker": 2} and states[dead][1] == "crashed"

            await until(settled)
            after = running(data / "host")
            states = await job_states(http, url)
            assert set(after) == {j for j, (_, state) in states.items() if state == "up"}
            assert {j: after[j] for j in before if j != dead} == {
                j: pid for j, pid in before.items() if j != dead
            }  # the survivors are the same processes
            assert len(states) == 4  # three adopted or replaced, one replacement: no duplicate

            await call(http, "DELETE", f"{url}/apps/shop")

            async def nothing_runs() -> bool:
                return running(data / "host") == {}

            await until(nothing_runs)
    finally:
        first.stop()
        if second is not None:
            second.stop()
