"""The service with SCHEDULER=local: real processes on this machine, driven through the API."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from controller import keys
from controller.keys import SCHEDULING
from domain.codec import encode
from domain.events import FormationScaled
from domain.timefmt import parse_time
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from service.settings import Settings
from tests.host.machine import running
from tests.scheduler.service import (
    WORKER,
    jobs,
    released_app,
    scale,
    start,
    until,
    up_counts,
)


async def test_a_crashing_process_is_reported_crashed_and_restarted_with_backoff(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """exit 3: `crashed` with exit_status 3 and its stderr in the log; a new job replaces it,
    at once for the first five restarts, then after the backoff delay."""
    client = await start(aiohttp_client, settings, InMemoryEventStore())
    crasher = {"cmd": ["sh", "-c", "echo boom >&2; sleep 0.1; exit 3"]}
    app = await released_app(client, root, worker=crasher)
    await scale(client, app, worker=1)

    async def crashed_seven() -> bool:
        return len(await jobs(client, app, "crashed")) >= 7

    await until(crashed_seven)
    await scale(client, app, worker=0)
    crashed = await jobs(client, app, "crashed")
    assert {(j["exit_status"], j["type"]) for j in crashed} == {(3, "worker")}
    log = await (await client.get(f"/apps/{app['id']}/log")).text()
    assert '"msg":"boom"' in log and '"stream":"stderr"' in log
    in_order = sorted(crashed, key=lambda j: j["created_at"])
    # The sixth restart in a row waits out the backoff after its predecessor crashed.
    assert (
        await _at(client, in_order[6]["id"], "starting")
        - await _at(client, in_order[5]["id"], "crashed")
        >= 0.3
    )


async def _at(client: TestClient, job_id: str, state: str) -> float:
    """When the log recorded `job_id` reaching `state`."""
    query = {"object_id": job_id}
    response = await client.get("/events", params=query, headers={"Accept": "application/json"})
    (event,) = [e for e in await response.json() if e["data"]["state"] == state]
    return _seconds(event["created_at"])


def _seconds(stamp: str) -> float:
    return parse_time(stamp).timestamp()


async def test_a_restarted_service_adopts_its_jobs_and_ends_with_the_desired_counts(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """Stopped mid-way: jobs keep running; meanwhile the formation changes and a process dies.
    The next service adopts the survivors, reports the dead one, stops the surplus and starts
    what is missing: no orphan process, no duplicate, the desired counts."""
    store = InMemoryEventStore()
    first = await start(aiohttp_client, settings, store)
    web = {"cmd": ["python3", "web.py"], "ports": [{"port": 8080}]}
    app = await released_app(first, root, web=web, worker={"cmd": ["sh", "-c", WORKER]})
    await scale(first, app, web=2, worker=1)

    async def three_up() -> bool:
        return await up_counts(first, app) == {"web": 2, "worker": 1}

    await until(three_up)
    before = running(root / "host")
    (dead_worker,) = [j["id"] for j in await jobs(first, app, "up") if j["type"] == "worker"]
    await first.close()
    assert running(root / "host") == before  # stopping the service leaves the jobs running

    await store.append(
        [encode(FormationScaled(app["id"], app["release"], {"web": 1, "worker": 2}))]
    )
    os.killpg(before[dead_worker], signal.SIGKILL)

    second = await start(aiohttp_client, settings, store)

    async def settled() -> bool:
        counts = await up_counts(second, app)
        live = await jobs(second, app)
        return counts == {"web": 1, "worker": 2} and all(
            j["state"] in ("up", "down", "crashed") for j in live
        )

    await until(settled)
    up = {j["id"] for j in await jobs(second, app, "up")}
    assert set(running(root / "host")) == up  # every process is an up job, and vice versa
    webs = [j for j in await jobs(second, app) if j["type"] == "web"]
    assert len(webs) == 2 and {j["state"] for j in webs} == {"up", "down"}
    survivor = next(j["id"] for j in webs if j["state"] == "up")
    assert running(root / "host")[survivor] == before[survivor]  # adopted, not restarted
    dead = next(j for j in await jobs(second, app) if j["id"] == dead_worker)
    assert dead["state"] == "crashed" and "supervisor was killed" in dead["host_error"]


async def test_with_scheduler_off_nothing_runs_the_formations(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """SCHEDULER=off: a formation stays a number; no job is started or reported."""
    off = attrs.evolve(settings, scheduler="off")
    client = await start(aiohttp_client, off, InMemoryEventStore())
    app = await released_app(client, root, worker={"cmd": ["sh", "-c", WORKER]})
    await scale(client, app, worker=2)
    await asyncio.sleep(0.3)
    assert await jobs(client, app) == [] and running(root / "host") == {}
    assert client.app[SCHEDULING].enabled is False


def test_scheduler_setting_defaults_to_local_from_the_environment():
    """`make run` schedules (SCHEDULER unset means local); an unknown value stops the start."""
    assert Settings.from_env({}).scheduler == "local"
    assert Settings.from_env({"SCHEDULER": "off"}).scheduler == "off"
    assert Settings.from_env({"RESTART_BACKOFF": "1,2,3"}).restart_backoff == (1, 2, 3)
    assert Settings().scheduler == "off"
    with pytest.raises(SystemExit):
        Settings.from_env({"SCHEDULER": "kubernetes"})


def test_host_settings_are_checked_at_start_up():
    """ARTIFACT_ROOT defaults under the data directory; JOB_UID_RANGE and HOST_ID are checked
    and JOB_USER, no longer read, stops the start rather than being silently ignored."""
    assert Settings.from_env({"EVENFLOW_DATA_DIR": "/d"}).artifacts_dir == Path("/d/artifacts")
    assert Settings.from_env({"ARTIFACT_ROOT": "/srv/a"}).artifacts_dir == Path("/srv/a")
    assert Settings.from_env({}).job_uid_range == (2_000_000_000, 2_000_065_535)
    assert Settings.from_env({"JOB_UID_RANGE": "3000-3999"}).job_uid_range == (3000, 3999)
    assert Settings.from_env({"HOST_ID": "node-1.example"}).host_id == "node1.example"
    for bad in (
        {"JOB_UID_RANGE": "0-10"}, {"JOB_UID_RANGE": "20-10"}, {"JOB_UID_RANGE": "-5"},
        {"JOB_UID_RANGE": "1-4294967295"}, {"HOST_ID": "../x"}, {"HOST_ID": "a/b"},
        {"HOST_ID": "." }, {"HOST_ID": "h" * 65}, {"JOB_USER": "nobody"},
    ):  # fmt: skip
        with pytest.raises(SystemExit):
            Settings.from_env(bad)


@pytest.fixture
async def database(make_database: Any) -> AsyncIterator[str]:
    yield await make_database()


@pytest.mark.postgres
async def test_one_controller_schedules_and_another_takes_over_when_it_stops(
    root: Path, aiohttp_client: Any, settings: Settings, database: str
):
    """Two controllers on one database: one leads (advisory lock), jobs are not duplicated; when
    the leader stops, the other takes over and adopts the running jobs."""
    stores = [await PostgresEventStore.open(database) for _ in range(2)]
    first = await start(aiohttp_client, settings, stores[0])
    second = await start(aiohttp_client, settings, stores[1])
    try:

        async def one_leader() -> bool:
            leading = [c.app[SCHEDULING].leading for c in (first, second)]
            return sorted(leading) == [False, True]

        await until(one_leader)
        leader, standby = (first, second) if first.app[SCHEDULING].leading else (second, first)
        app = await released_app(leader, root, worker={"cmd": ["sh", "-c", WORKER]})
        await scale(leader, app, worker=2)

        async def two_up() -> bool:
            return await up_counts(standby, app) == {"worker": 2}

        await until(two_up)
        ids = {j["id"] for j in await jobs(standby, app)}
        await leader.close()

        async def took_over() -> bool:
            return standby.app[SCHEDULING].leading  # type: ignore[no-any-return]

        await until(took_over)
        await scale(standby, app, worker=3)

        async def three_up() -> bool:
            return await up_counts(standby, app) == {"worker": 3}

        await until(three_up)
        assert ids < {j["id"] for j in await jobs(standby, app, "up")}  # the two adopted
        assert len(await jobs(standby, app)) == 3
        assert set(running(root / "host")) == {j["id"] for j in await jobs(standby, app, "up")}
        assert standby.app[keys.HEALTH].get("scheduler", "") == ""
    finally:
        for client in (first, second):
            await client.close()
        for store in stores:
            await store.close()
