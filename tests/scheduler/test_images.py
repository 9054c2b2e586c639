"""Image releases through the API with the local scheduler and JOB_HOST=podman: containers
scaled, deployed one by one, killed, crashed, logged, deleted with their app, adopted by a
restarted service, and `flynn run` attached to one."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient

from eventstore.memory import InMemoryEventStore
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS
from tests.host.images import busybox_image, containers, published_port, remove_containers
from tests.scheduler.attach_client import Attached
from tests.scheduler.service import jobs, post, scale, start, until, up_counts
from tests.scheduler.test_attach import scheduling

#: A web server of the test image: says which job it is, and logs its port.
WEB = ('echo "$GREETING from $FLYNN_JOB_ID" > /tmp/index.html; echo "web listening on $PORT";'
       ' exec httpd -f -p "$PORT" -h /tmp')  # fmt: skip


@pytest.fixture
def image() -> str:
    return busybox_image()


@pytest.fixture
def podman_settings(settings: Settings) -> Iterator[Settings]:
    """A scheduling service whose image jobs are containers of a host id of this test's own
    (removed at the end: requested before `aiohttp_client`, this runs after the service stops)."""
    host_id = f"t{uuid.uuid4().hex[:10]}"
    yield attrs.evolve(settings, job_host="podman", host_id=host_id, job_up_timeout=20.0)
    remove_containers(host_id)


async def image_app(client: TestClient, image: str, name: str = "shop") -> dict:
    answer: dict = await post(client, "/apps", {"name": name})
    return answer


async def image_release(client: TestClient, app: dict, image: str, greeting: str) -> str:
    artifact = await post(client, "/artifacts",
                          {"type": "docker", "uri": f"containers-storage:{image}"})  # fmt: skip
    processes = {
        "web": {"cmd": ["sh", "-c", WEB], "ports": [{"proto": "tcp"}]},
        "crasher": {"cmd": ["sh", "-c", "echo going down >&2; sleep 0.5; exit 3"]},
    }
    body = {"artifact": artifact["id"], "env": {"GREETING": greeting}, "processes": processes}
    release = await post(client, "/releases", body)
    return str(release["id"])


async def greetings(client: TestClient, app: dict) -> dict[str, str]:
    """Job id -> what its web server answers, for every up web job (on the port its container
    publishes, which it also logged)."""
    log = await (await client.get(f"/apps/{app['id']}/log", params={"process_type": "web"})).text()
    answers = {}
    async with aiohttp.ClientSession() as http:
        for job in await jobs(client, app, "up"):
            if job["type"] != "web":
                continue
            port = published_port(job["id"])
            async with http.get(f"http://127.0.0.1:{port}/index.html") as response:
                answers[job["id"]] = (await response.text()).strip()
            assert f"web listening on {port}" in log or not log
    return answers


async def test_an_image_release_scales_deploys_one_by_one_and_goes_with_its_app(
    root: Path, podman_settings: Settings, aiohttp_client: Any, image: str
):
    """web=2 from an image: both containers answer on their ports and log; a one-by-one
    deploy to a second image release completes and its jobs answer; a killed job is replaced;
    deleting the app leaves no container."""
    client = await start(aiohttp_client, podman_settings, InMemoryEventStore())
    app = await image_app(client, image)
    first = await image_release(client, app, image, "hello")
    assert (await client.put(f"/apps/{app['id']}/release", json={"id": first})).status == 200
    await scale(client, {**app, "release": first}, web=2)

    async def two_answer(greeting: str) -> bool:
        answers = await greetings(client, app)
        return len(answers) == 2 and all(a == f"{greeting} from {j}" for j, a in answers.items())

    await until(lambda: two_answer("hello"), 60)
    await post(client, f"/apps/{app['id']}", {"strategy": "one-by-one"})
    second = await image_release(client, app, image, "bonjour")
    deployment = await post(client, f"/apps/{app['id']}/deploy", {"id": second})

    async def deployed() -> bool:
        found = await (await client.get(f"/deployments/{deployment['id']}")).json()
        return bool(found["status"] == "complete")

    await until(deployed, 90)
    await until(lambda: two_answer("bonjour"), 60)
    victim = next(iter(await greetings(client, app)))
    assert (await client.delete(f"/apps/{app['id']}/jobs/{victim}")).status == 200

    async def replaced() -> bool:
        states = {j["id"]: j["state"] for j in await jobs(client, app)}
        return states[victim] == "down" and await up_counts(client, app) == {"web": 2}

    await until(replaced, 60)
    running = [j for j, state in containers(podman_settings.host_id).items() if state == "running"]
    assert sorted(running) == sorted(j["id"] for j in await jobs(client, app, "up"))
    assert (await client.delete(f"/apps/{app['id']}")).status == 200

    async def none_running() -> bool:
        return "running" not in containers(podman_settings.host_id).values()

    await until(none_running, 60)


async def test_a_crashing_container_is_reported_with_its_exit_status_and_its_log(
    root: Path, podman_settings: Settings, aiohttp_client: Any, image: str
):
    """exit 3 in a container: `crashed` with exit_status 3, its stderr in the app log, and a
    new job in its place."""
    client = await start(aiohttp_client, podman_settings, InMemoryEventStore())
    app = await image_app(client, image)
    release = await image_release(client, app, image, "hello")
    await scale(client, {**app, "release": release}, crasher=1)

    async def crashed_twice() -> bool:
        return len(await jobs(client, app, "crashed")) >= 2

    await until(crashed_twice, 60)
    await scale(client, {**app, "release": release}, crasher=0)
    crashed = await jobs(client, app, "crashed")
    assert {(j["exit_status"], j["type"], j.get("host_error")) for j in crashed} == {
        (3, "crasher", None)
    }
    log = await (await client.get(f"/apps/{app['id']}/log")).text()
    assert '"msg":"going down"' in log and '"stream":"stderr"' in log


async def test_a_restarted_service_adopts_its_running_containers(
    root: Path, podman_settings: Settings, aiohttp_client: Any, image: str
):
    """The service stops, its containers go on; the next one adopts them: the same jobs are
    up, no new job is made, and they still answer."""
    store = InMemoryEventStore()
    first = await start(aiohttp_client, podman_settings, store)
    app = await image_app(first, image)
    release = await image_release(first, app, image, "hello")
    await scale(first, {**app, "release": release}, web=2)

    async def two_up() -> bool:
        return await up_counts(first, app) == {"web": 2}

    await until(two_up, 60)
    before = sorted(j["id"] for j in await jobs(first, app, "up"))
    await first.close()
    assert sorted(containers(podman_settings.host_id)) == before  # still there, still running
    second = await start(aiohttp_client, podman_settings, store)
    await scheduling(second)
    await asyncio.sleep(1)  # a pass or two of the new scheduler
    assert sorted(j["id"] for j in await jobs(second, app, "up")) == before
    assert len(await jobs(second, app)) == 2
    answers = await greetings(second, app)
    assert sorted(answers) == before


async def test_flynn_run_attaches_to_a_container(
    root: Path, podman_settings: Settings, aiohttp_client: Any, image: str
):
    """`flynn run` on an image release: stdin in, output and exit status out."""
    client = await start(aiohttp_client, podman_settings, InMemoryEventStore())
    app = await image_app(client, image)
    release = await image_release(client, app, image, "hello")
    await scheduling(client)
    server, auth = client.server, AUTH_HEADERS["Authorization"]
    job = {"release": release, "args": ["sh", "-c", 'read x; echo "$GREETING $x"; exit 5'],
           "release_env": True}  # fmt: skip
    assert server.port is not None
    attached = await Attached.open(server.host, server.port, app["id"], job, auth)
    assert attached.status == 101
    attached.send(b"world\n")
    assert await attached.receive() == ({1: b"hello world\n"}, 5, "")
    await attached.close()


def test_the_job_host_and_the_pull_policy_are_settings_checked_at_start_up():
    """JOB_HOST is auto unless set (podman where it is installed), IMAGE_PULL missing; an
    unknown value of either stops the start, as does JOB_HOST=podman without podman."""
    assert Settings.from_env({}).job_host == "auto"
    assert Settings.from_env({"JOB_HOST": "local"}).job_host == "local"
    assert Settings.from_env({"JOB_HOST": "podman"}).job_host == "podman"
    assert Settings.from_env({}).image_pull == "missing"
    assert Settings.from_env({"IMAGE_PULL": "never"}).image_pull == "never"
    assert Settings().job_host == "local"  # settings made in code run processes only
    for bad in ({"JOB_HOST": "docker"}, {"IMAGE_PULL": "sometimes"},
                {"PODMAN_RUNTIME": "kata"}):  # fmt: skip
        with pytest.raises(SystemExit):
            Settings.from_env(bad)
