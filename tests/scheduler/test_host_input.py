"""What a client sends never reaches the host unchecked: hostile job ids are 400s that make
nothing on disk, artifacts out of reach fail their jobs with a host error, and env entries or
arguments execve cannot take are 400s. Through the API, with the local scheduler running."""

import asyncio
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from controller.app import create_app
from eventstore.store import EventStore
from service.settings import Settings
from tests.controller.api import post
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY
from tests.host.machine import make_artifact, reachable_dir

U = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


@pytest.fixture
async def client(root: Path, store: EventStore, aiohttp_client: Any) -> TestClient:
    """The service scheduling on this machine, its data (and artifact root) under `root`."""
    settings = Settings(
        auth_keys=(AUTH_KEY,), scheduler="local", data_dir=root / "data", job_stop_grace=1.0,
        host_poll_interval=0.02, leader_retry=0.1,
    )  # fmt: skip
    return await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)  # type: ignore[no-any-return]


async def release_of(client: TestClient, uri: str, **process: Any) -> str:
    artifact = await post(client, "/artifacts", {"type": "file", "uri": uri})
    body = {"artifact": artifact["id"], "processes": {"web": process}} if process else {}
    return (await post(client, "/releases", {"artifact": artifact["id"], **body}))["id"]  # type: ignore[no-any-return]


async def settled(client: TestClient, job_id: str) -> dict[str, Any]:
    """The job once it reached a final state."""
    async with asyncio.timeout(20):
        while True:
            response = await client.get(f"/apps/shop/jobs/{job_id}")
            if response.status == 200:
                job = await response.json()
                if job["state"] in ("down", "crashed", "failed"):
                    return job  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


def job_path(job_id: str) -> URL:
    """/apps/shop/jobs/<job_id>, the id escaped so that it arrives as it is (dots included)."""
    return URL(f"/apps/shop/jobs/{quote(job_id, safe='').replace('.', '%2E')}", encoded=True)


async def job_events(client: TestClient) -> list[dict[str, Any]]:
    response = await client.get(
        "/events", params={"object_types": "job"}, headers={"Accept": "application/json"}
    )
    return await response.json()  # type: ignore[no-any-return]


async def test_hostile_job_ids_are_refused_and_make_nothing_on_disk(client: TestClient, root: Path):
    """Reports of new pending jobs whose id is a path, climbs with `..`, holds NUL, is 3 KB
    long or is not `<host id>-<uuid>` are 400s on field id: no event, no directory. A
    well-formed id of another host is recorded and run (it fails: a report has no command);
    the path's id is ignored, as in Flynn."""
    await post(client, "/apps", {"name": "shop"})
    release = await release_of(client, (make_artifact(root / "data" / "artifacts")).as_uri())
    victim = root / "victim"
    hostile = [
        "../../x", f"{victim}", f"host-../../{victim.name}", f"host-{U}/../../x",
        f"host-{U}\0", "..", f"..-{U}", f"host/{U}", f"host-{U.upper()}", "h" * 3000,
        f"{'h' * 3000}-{U}", U,
    ]  # fmt: skip
    for job_id in hostile:
        body = {"id": job_id, "release": release, "state": "pending"}
        response = await client.put(job_path(job_id), json=body)
        assert response.status == 400, job_id
        error = await response.json()
        assert (error["code"], error["retry"]) == ("validation_error", False), job_id
        if "\0" not in job_id:  # else refused as JSON already (no NUL in any string)
            assert error["detail"] == {"field": "id"}, job_id
            assert error["message"].startswith("id must be <host id>-<uuid>"), job_id
    for parts in ({"uuid": "../../x", "host_id": "host"}, {"uuid": U, "host_id": "../x"}):
        response = await client.put(
            f"/apps/shop/jobs/{U}", json={**parts, "release": release, "state": "pending"}
        )
        assert response.status == 400, parts
    assert await job_events(client) == []

    other = f"otherhost-{uuid.uuid4()}"
    body = {"id": other, "release": release, "state": "pending"}
    response = await client.put(job_path("../../x"), json=body)
    assert response.status == 200 and (await response.json())["id"] == other
    job = await settled(client, other)
    assert (job["state"], job["host_error"]) == (
        "failed",
        "nothing to run: no entrypoint, cmd or args",
    )
    assert {event["object_id"] for event in await job_events(client)} == {other}
    async with asyncio.timeout(10):  # the job's directory goes once its end is reported
        while os.listdir(root / "data" / "host" / "jobs"):
            await asyncio.sleep(0.05)
    assert not victim.exists() and not (root / "x").exists()


async def test_artifacts_out_of_reach_fail_their_jobs_with_a_host_error(
    client: TestClient, root: Path
):
    """A file artifact outside ARTIFACT_ROOT (here the default, under the data directory), a
    link out of it, or a file only root may read fails its job with the reason as host error;
    one inside it runs."""
    artifacts = root / "data" / "artifacts"
    good = make_artifact(artifacts, **{"hello.txt": "hello\n"})
    secret = root / "secret.txt"
    secret.write_text("root's\n")
    secret.chmod(0o600)
    (artifacts / "link").symlink_to(secret.parent)
    private = artifacts / "private.tar"
    with tarfile.open(private, "w"):
        pass
    private.chmod(0o600)
    await post(client, "/apps", {"name": "shop"})
    cases = {
        "file:///etc/shadow": "is outside the artifact root",
        secret.as_uri(): "is outside the artifact root",
        f"file://{artifacts}/link/secret.txt": f"{artifacts}/link is a symbolic link",
        good.as_uri(): "",
    }
    if os.geteuid() == 0:
        cases[private.as_uri()] = "cannot be read by the job's user (permission denied)"
    runs = {}
    for uri in cases:
        body = {"release": await release_of(client, uri), "cmd": ["cat", "hello.txt"]}
        runs[uri] = (await post(client, "/apps/shop/jobs", body))["id"]
    for uri, reason in cases.items():
        job = await settled(client, runs[uri])
        if reason:
            assert job["state"] == "failed" and reason in job["host_error"], (uri, job)
            assert job["host_error"].startswith(f"the artifact {uri}")
        else:
            assert (job["state"], job.get("exit_status")) == ("down", 0), job
    log = await (await client.get("/apps/shop/log")).text()
    assert '"msg":"hello"' in log and "root's" not in log


async def test_env_entries_and_arguments_execve_cannot_take_are_400s(
    client: TestClient, root: Path
):
    """An empty env name or one with `=`: 400 on the field, for one-off jobs and for releases
    alike, and nothing is recorded; NUL anywhere is a 400 too."""
    await post(client, "/apps", {"name": "shop"})
    release = await release_of(client, make_artifact(root / "data" / "artifacts").as_uri())
    for body, field in (
        ({"env": {"A=B": "1"}}, "env"),
        ({"env": {"": "1"}}, "env"),
        ({"env": {"A\0": "1"}}, None),
        ({"env": {"A": "1\0"}}, None),
        ({"cmd": ["sh", "-c\0"]}, None),
        ({"entrypoint": ["\0"]}, None),
    ):
        for path, doc in (
            ("/apps/shop/jobs", {"release": release, **body}),
            ("/releases", {"processes": {"web": body}}),
            ("/releases", body),
        ):
            response = await client.post(path, json=doc)
            error = await response.json()
            assert (response.status, error["code"]) == (400, "validation_error"), (path, doc)
            if field is not None:
                assert error["detail"]["field"] in (field, f"processes.web.{field}"), (path, doc)
    assert await job_events(client) == []
