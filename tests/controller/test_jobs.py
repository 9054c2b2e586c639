"""Jobs over HTTP: run a one-off job, state reports from the scheduler, get, list, kill and the
active jobs, with Flynn's shapes, errors and `job` events."""

import json
from pathlib import Path

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.controller.api import flynn_error, post

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)
JSON_ACCEPT = {"Accept": "application/json"}
MISSING = "00000000-0000-4000-8000-000000000000"
HEAD_ONLY = {"uuid", "host_id"}  # HEAD's job keys beside SEED's


def recorded(name: str, part: str = "response") -> dict:
    answer: dict = json.loads(RECORDED[name][part]["body"])
    return answer


async def release(client: TestClient, *, artifact: bool = True) -> dict:
    body: dict = {"env": {"SECRET": "release", "SHARED": "release"}}
    if artifact:
        body["artifact"] = (
            await post(client, "/artifacts", {"type": "docker", "uri": "https://e/s"})
        )["id"]
    return await post(client, "/releases", body)


async def setup(client: TestClient, name: str = "app") -> tuple[dict, dict]:
    return await post(client, "/apps", {"name": name}), await release(client)


async def job_events(client: TestClient) -> list[dict]:
    response = await client.get("/events", params={"object_types": "job"}, headers=JSON_ACCEPT)
    return list(reversed(await response.json()))


async def report(client: TestClient, app: str, job_id: str, **body: object) -> ClientResponse:
    return await client.put(f"/apps/{app}/jobs/{job_id}", json={"id": job_id, **body})


def host_job(n: int) -> str:
    return f"myhost-00000000-0000-4000-8000-{n:012d}"


async def test_run_job_records_a_pending_job_and_answers_flynns_shape(client: TestClient):
    """POST /apps/:app/jobs answers {id, release, cmd} plus uuid and host_id, and records the job
    as a pending `job` event with Flynn's env and metadata."""
    app, rel = await setup(client)
    body = {**recorded("job_run", "request"), "release": rel["id"], "meta": {"who": "me"}}
    job = await post(client, "/apps/app/jobs", body)
    assert set(job) == set(recorded("job_run")) | HEAD_ONLY
    host, uuid = job["id"].split("-", 1)
    assert (host, uuid) == (job["host_id"], job["uuid"]) and host == "host"
    assert job["release"] == rel["id"] and job["cmd"] == ["echo", "$BODY"]
    (event,) = await job_events(client)
    assert (event["object_id"], event["app"]) == (job["id"], app["id"])
    data = event["data"]
    assert data["state"] == "pending" and data["cmd"] == ["echo", "$BODY"]
    assert data["env"] == {
        "FLYNN_APP_ID": app["id"],
        "FLYNN_RELEASE_ID": rel["id"],
        "FLYNN_PROCESS_TYPE": "",
        "FLYNN_JOB_ID": job["id"],
        "BODY": "Hello!",
    }
    assert data["meta"] == {
        "who": "me",
        "flynn-controller.app": app["id"],
        "flynn-controller.app_name": "app",
        "flynn-controller.release": rel["id"],
    }


async def test_run_job_adds_the_release_env_only_when_asked_and_the_request_env_wins(
    client: TestClient,
):
    """With release_env the release's env is added, and the request's env overrides it."""
    _, rel = await setup(client)
    body = {"release": rel["id"], "release_env": True, "env": {"SHARED": "request"}}
    job = await post(client, "/apps/app/jobs", body)
    (event,) = await job_events(client)
    env = event["data"]["env"]
    assert env["SECRET"] == "release" and env["SHARED"] == "request"
    assert env["FLYNN_JOB_ID"] == job["id"] and "cmd" not in job


async def test_run_job_needs_a_known_app_and_a_release_with_an_artifact(client: TestClient):
    """Unknown app or release is a bare 404; a release without an artifact is a 400 on field
    release; nothing is recorded."""
    await setup(client)
    bare = await release(client, artifact=False)
    assert (await client.post("/apps/nope/jobs", json={"release": bare["id"]})).status == 404
    response = await client.post("/apps/app/jobs", json={"release": MISSING})
    assert response.status == 404 and await response.read() == b""
    response = await client.post("/apps/app/jobs", json={"release": bare["id"]})
    assert response.status == 400
    assert await response.json() == flynn_error(
        "validation_error", "release has no artifact to run", field="release"
    )
    assert await job_events(client) == []


async def test_put_job_upserts_with_one_event_per_state(client: TestClient):
    """A state report answers the job as Flynn recorded it; a repeated state records nothing,
    a new one records a `job` event."""
    app, rel = await setup(client)
    body = {**recorded("job_update", "request"), "release": rel["id"], "state": "starting"}
    job_id = body["id"]
    response = await client.put(f"/apps/app/jobs/{job_id}", json=body)
    assert response.status == 200
    job = await response.json()
    assert set(job) == set(recorded("job_update")) | HEAD_ONLY
    assert (job["app"], job["state"], job["created_at"]) == (
        app["id"],
        "starting",
        job["updated_at"],
    )
    again = await (await client.put(f"/apps/app/jobs/{job_id}", json=body)).json()
    assert again == job
    up = await report(client, "app", job_id, release=rel["id"], state="up")
    down = await report(client, "app", job_id, release=rel["id"], state="down", exit_status=2)
    assert (await down.json())["exit_status"] == 2 and up.status == 200
    events = await job_events(client)
    assert [e["data"]["state"] for e in events] == ["starting", "up", "down"]
    assert {e["object_id"] for e in events} == {job_id}


async def test_put_job_refuses_backwards_state_changes(client: TestClient):
    """Moving a job back (down -> up) is a 400 on field state; re-reporting down is fine."""
    _, rel = await setup(client)
    await report(client, "app", host_job(1), release=rel["id"], state="down")
    response = await report(client, "app", host_job(1), release=rel["id"], state="up")
    assert response.status == 400
    assert await response.json() == flynn_error(
        "validation_error", "state invalid job state transition: down -> up", field="state"
    )
    assert (await report(client, "app", host_job(1), release=rel["id"], state="down")).status == 200
    assert len(await job_events(client)) == 1


async def test_put_job_keys_on_the_body_id_and_needs_app_and_release(client: TestClient):
    """The path's job id is ignored; an unknown app is a 404, an unknown release a 400."""
    _, rel = await setup(client)
    response = await client.put(
        "/apps/app/jobs/whatever", json={"id": host_job(2), "release": rel["id"], "state": "up"}
    )
    assert (await response.json())["id"] == host_job(2)
    assert (await client.get(f"/apps/app/jobs/{host_job(2)}")).status == 200
    assert (await report(client, "nope", host_job(3), release=rel["id"], state="up")).status == 404
    response = await report(client, "app", host_job(3), release=MISSING, state="up")
    assert response.status == 400 and (await response.json())["detail"] == {"field": "release"}


async def test_get_job_by_full_id_or_uuid_and_list_newest_first(client: TestClient):
    """A job is found by its full id or its bare uuid; the app's list is newest first."""
    _, rel = await setup(client)
    for n in (1, 2):
        await report(client, "app", host_job(n), release=rel["id"], state="up", type="web")
    first = await (await client.get(f"/apps/app/jobs/{host_job(1)}")).json()
    assert set(first) == set(recorded("job_get")) | HEAD_ONLY | {"type"}
    by_uuid = await client.get(f"/apps/app/jobs/{host_job(1).split('-', 1)[1]}")
    assert await by_uuid.json() == first
    listed = await (await client.get("/apps/app/jobs")).json()
    assert [j["id"] for j in listed] == [host_job(2), host_job(1)]
    for ref in (host_job(9), MISSING):
        response = await client.get(f"/apps/app/jobs/{ref}")
        assert response.status == 404 and await response.read() == b""
    await post(client, "/apps", {"name": "other"})
    assert (await client.get(f"/apps/other/jobs/{host_job(1)}")).status == 404
    assert await (await client.get("/apps/other/jobs")).json() == []


async def test_kill_job_stops_what_runs_and_leaves_the_rest(client: TestClient):
    """DELETE puts a pending job down, marks a running one stopping, records nothing for one
    already stopping or down, and is a bare 404 for an unknown job."""
    _, rel = await setup(client)
    pending = (await post(client, "/apps/app/jobs", {"release": rel["id"]}))["id"]
    await report(client, "app", host_job(1), release=rel["id"], state="up")
    await report(client, "app", host_job(2), release=rel["id"], state="down")
    for job_id in (pending, host_job(1), host_job(1), host_job(2)):
        response = await client.delete(f"/apps/app/jobs/{job_id}")
        assert response.status == 200 and await response.read() == b""
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    states = [(e["object_id"], e["data"]["state"]) for e in await job_events(client)]
    assert states[-2:] == [(pending, "down"), (host_job(1), "stopping")]
    assert len(states) == 5
    assert (await client.delete(f"/apps/app/jobs/{host_job(9)}")).status == 404


async def test_active_jobs_are_unfinished_jobs_last_updated_first(client: TestClient):
    """GET /active-jobs lists pending, starting, up and stopping jobs of every app."""
    _, rel = await setup(client)
    await report(client, "app", host_job(1), release=rel["id"], state="up")
    await report(client, "app", host_job(2), release=rel["id"], state="down")
    await report(client, "app", host_job(3), release=rel["id"], state="starting")
    await report(client, "app", host_job(1), release=rel["id"], state="stopping")
    active = await (await client.get("/active-jobs")).json()
    assert [(j["id"], j["state"]) for j in active] == [
        (host_job(1), "stopping"),
        (host_job(3), "starting"),
    ]


async def test_jobs_of_a_deleted_app_can_still_be_reported_down(client: TestClient):
    """After its app is deleted, the scheduler can still report a job down (by the app id)."""
    app, rel = await setup(client)
    await report(client, "app", host_job(1), release=rel["id"], state="up")
    assert (await client.delete("/apps/app")).status == 200
    response = await report(client, app["id"], host_job(1), release=rel["id"], state="down")
    assert response.status == 200 and (await response.json())["state"] == "down"
    assert (
        await report(client, app["id"], host_job(2), release=rel["id"], state="up")
    ).status == 404


ATTACH = {"Upgrade": "flynn-attach/0", "Connection": "upgrade"}


async def test_an_attached_run_without_a_scheduler_here_is_a_503_and_records_nothing(
    client: TestClient,
):
    """`flynn run` attaches by default; a controller that does not schedule cannot attach
    (the job's streams live on the scheduler's host): it says so in Flynn's error shape,
    which the CLI prints, and records no job."""
    _, rel = await setup(client)
    response = await client.post(
        "/apps/app/jobs", json={"release": rel["id"], "args": ["echo", "hi"]}, headers=ATTACH
    )
    assert response.status == 503
    body = await response.json()
    assert body["code"] == "service_unavailable" and "does not schedule" in body["message"]
    assert await job_events(client) == []
