"""kill -9 of a service running containers (`python -m controller serve`, on its own event
loop): the next one adopts them; one that died meanwhile is reported and replaced."""

import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.host.images import busybox_image, containers, podman, remove_containers
from tests.scheduler.served import Served
from tests.scheduler.test_images import WEB
from tests.scheduler.test_served import AUTH, call, counts, job_states, until

pytestmark = pytest.mark.postgres


@pytest.fixture
def host_id() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    remove_containers(name)


async def test_a_killed_service_is_followed_by_one_that_adopts_its_containers(
    make_database: Callable[[], Awaitable[str]], root: Path, host_id: str
):
    """kill -9 leaves the containers running; one is killed meanwhile; the next service
    adopts the others (the same containers), reports the dead one crashed and replaces it;
    deleting the app then leaves no container running."""
    image = busybox_image()
    database, data, output = await make_database(), root / "data", root / "service.log"
    env = {"JOB_HOST": "podman", "HOST_ID": host_id}
    first = Served(database, data, output, env)
    second: Served | None = None
    try:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            url = first.url
            await call(http, "POST", f"{url}/apps", {"name": "shop"})
            source = {"type": "docker", "uri": f"containers-storage:{image}"}
            artifact = await call(http, "POST", f"{url}/artifacts", source)
            web = {"cmd": ["sh", "-c", WEB], "ports": [{"proto": "tcp"}]}
            body = {"artifact": artifact["id"], "processes": {"web": web}}
            release = await call(http, "POST", f"{url}/releases", body)
            await call(http, "PUT", f"{url}/apps/shop/release", {"id": release["id"]})
            formation = f"{url}/apps/shop/formations/{release['id']}"
            await call(http, "PUT", formation, {"processes": {"web": 3}})

            async def all_up() -> bool:
                return counts(await job_states(http, url)) == {"web": 3}

            await until(all_up, 60)
            before = sorted(containers(host_id))
            first.kill()
            assert containers(host_id) == dict.fromkeys(before, "running"), output.read_text()
            dead = before[0]
            podman("kill", dead)  # a container dies while no service runs

            second = Served(database, data, output, env)
            url = second.url

            async def settled() -> bool:
                states = await job_states(http, url)
                return counts(states) == {"web": 3} and states[dead][1] == "crashed"

            await until(settled, 60)
            states = await job_states(http, url)
            up = {j for j, (_, state) in states.items() if state == "up"}
            assert up > set(before) - {dead}  # the survivors, adopted
            assert len(states) == 4  # one replacement: no duplicate
            running = {j for j, state in containers(host_id).items() if state == "running"}
            assert running == up

            await call(http, "DELETE", f"{url}/apps/shop")

            async def nothing_runs() -> bool:
                return "running" not in containers(host_id).values()

            await until(nothing_runs, 60)
    finally:
        first.stop()
        if second is not None:
            second.stop()
