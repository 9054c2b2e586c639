"""Formations over HTTP: put, get (expanded), list, delete, active ones and the scheduler's
stream, with Flynn's shapes, errors and `scale` events."""

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from domain.timefmt import format_time, parse_time
from tests.controller.api import flynn_error, post

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)
JSON_ACCEPT = {"Accept": "application/json"}
STREAM_ACCEPT = {"Accept": "text/event-stream"}
MISSING = "00000000-0000-4000-8000-000000000000"


def recorded_body(name: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(RECORDED[name]["response"]["body"])
    return answer


async def release(
    client: TestClient, *, artifact: bool = True, uri: str = "https://e/slug"
) -> dict:
    body: dict = {"processes": {"web": {"cmd": ["serve"]}, "worker": {"cmd": ["work"]}}}
    if artifact:
        body["artifact"] = (await post(client, "/artifacts", {"type": "docker", "uri": uri}))["id"]
    return await post(client, "/releases", body)


async def setup(client: TestClient, name: str = "app", **app: object) -> tuple[dict, dict]:
    return await post(client, "/apps", {"name": name, **app}), await release(client)


async def put(client: TestClient, app: str, release_id: str, processes: object) -> ClientResponse:
    return await client.put(f"/apps/{app}/formations/{release_id}", json={"processes": processes})


async def scale_events(client: TestClient) -> list[dict]:
    params = {"object_types": "scale"}
    response = await client.get("/events", params=params, headers=JSON_ACCEPT)
    return list(reversed(await response.json()))


async def test_put_formation_answers_flynns_shape_and_records_scale_events(client: TestClient):
    """PUT answers the formation as Flynn recorded it; each PUT is a `scale` event that replaces
    the counts and carries the previous ones."""
    app, rel = await setup(client)
    response = await put(client, "app", rel["id"], {"web": 2, "worker": 1})
    assert response.status == 200
    formation = await response.json()
    assert set(formation) == set(recorded_body("formation_put"))
    assert formation["app"] == app["id"] and formation["processes"] == {"web": 2, "worker": 1}
    replaced = await (await put(client, app["id"], rel["id"], {"web": 3})).json()
    assert replaced["processes"] == {"web": 3}  # SEED: a full replace
    assert replaced["created_at"] == formation["created_at"]
    events = await scale_events(client)
    assert [(e["object_id"], e["app"]) for e in events] == [
        (f"{app['id']}:{rel['id']}", app["id"])
    ] * 2
    assert events[0]["data"] == {"processes": {"web": 2, "worker": 1}, "release": rel["id"]}
    assert events[1]["data"] == {
        "prev_processes": {"web": 2, "worker": 1},
        "processes": {"web": 3},
        "release": rel["id"],
    }


async def test_put_formation_checks_app_release_artifact_then_process_types(client: TestClient):
    """Unknown app or release is a bare 404, a release without artifact is "not deployable",
    unknown process types get Flynn's message; nothing is recorded."""
    await setup(client)
    bare = await release(client, artifact=False)
    assert (await put(client, "nope", bare["id"], {"web": 1})).status == 404
    for ref in (MISSING, "not-a-uuid"):
        response = await put(client, "app", ref, {"web": 1})
        assert response.status == 404 and await response.read() == b""
    response = await put(client, "app", bare["id"], {"nope": 1})
    assert response.status == 400
    assert await response.json() == flynn_error("validation_error", "release is not deployable")
    rel = await release(client, uri="https://e/other")
    response = await put(client, "app", rel["id"], {"web": 1, "db": 1, "cache": 0})
    assert response.status == 400
    assert (await response.json())["message"] == (
        "Requested formation includes process types that do not exist in release. "
        "Invalid process types: [db, cache]"
    )
    assert await scale_events(client) == []


async def test_negative_counts_are_a_validation_error(client: TestClient):
    """A negative process count is refused by the schema (Flynn accepted it)."""
    _, rel = await setup(client)
    response = await put(client, "app", rel["id"], {"web": -1})
    assert response.status == 400
    assert (await response.json())["code"] == "validation_error"


async def test_get_formation_plain_and_expanded_like_the_recording(client: TestClient):
    """GET answers the formation; ?expand=true the SEED expanded shape (partial app and
    artifact, release without created_at); no live formation is a bare 404."""
    app, rel = await setup(client)
    put_answer = await (await put(client, "app", rel["id"], {"web": 1})).json()
    path = f"/apps/app/formations/{rel['id']}"
    assert await (await client.get(path)).json() == put_answer
    got = await (await client.get(path, params={"expand": "true"})).json()
    recorded = recorded_body("formation_get_expanded")
    assert set(got) == set(recorded)
    assert got["app"] == {"id": app["id"], "name": "app", "meta": None}
    assert (
        set(got["artifact"]) == {"id", "type", "uri"} and got["artifact"]["id"] == rel["artifact"]
    )
    assert got["release"] == {k: v for k, v in rel.items() if k != "created_at"}
    assert got["processes"] == {"web": 1} and got["updated_at"] == put_answer["updated_at"]
    other = await release(client, uri="https://e/2")
    response = await client.get(f"/apps/app/formations/{other['id']}")
    assert response.status == 404 and await response.read() == b""


async def test_list_app_formations_is_live_ones_newest_first(client: TestClient):
    """GET /apps/:app/formations lists the live formations, newest first, deleted ones left out."""
    _, first = await setup(client)
    second, third = (
        await release(client, uri="https://e/2"),
        await release(client, uri="https://e/3"),
    )
    for rel in (first, second, third):
        assert (await put(client, "app", rel["id"], {"web": 1})).status == 200
    assert (await client.delete(f"/apps/app/formations/{second['id']}")).status == 200
    listed = await (await client.get("/apps/app/formations")).json()
    assert [f["release"] for f in listed] == [third["id"], first["id"]]
    assert set(listed[0]) == set(recorded_body("formation_list")[0])  # type: ignore[index]


async def test_delete_formation_is_a_soft_delete_with_a_null_scale_event(client: TestClient):
    """DELETE answers an empty 200 and records `scale` with processes null; then it is gone."""
    app, rel = await setup(client)
    await put(client, "app", rel["id"], {"web": 2})
    path = f"/apps/app/formations/{rel['id']}"
    response = await client.delete(path)
    assert response.status == 200 and await response.read() == b""
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (await client.get(path)).status == 404
    assert (await client.delete(path)).status == 404
    last = (await scale_events(client))[-1]
    assert last["data"] == {"prev_processes": {"web": 2}, "processes": None, "release": rel["id"]}
    assert len(await scale_events(client)) == 2
    # A formation can be put again after its deletion.
    assert (await put(client, app["id"], rel["id"], {"web": 1})).status == 200


async def test_active_formations_are_expanded_running_ones_last_updated_first(client: TestClient):
    """?active=true lists expanded formations with processes, last updated first; zero-scaled
    and deleted ones are left out."""
    _, rel = await setup(client)
    await post(client, "/apps", {"name": "other"})
    zero, gone = await release(client, uri="https://e/2"), await release(client, uri="https://e/3")
    await put(client, "app", rel["id"], {"web": 1})
    await put(client, "other", rel["id"], {"worker": 2})
    await put(client, "app", zero["id"], {"web": 0})
    await put(client, "app", gone["id"], {"web": 1})
    await client.delete(f"/apps/app/formations/{gone['id']}")
    await put(client, "app", rel["id"], {"web": 3})  # now the last updated
    response = await client.get("/formations", params={"active": "true"})
    assert response.status == 200
    active = await response.json()
    assert [(f["app"]["name"], f["processes"]) for f in active] == [
        ("app", {"web": 3}),
        ("other", {"worker": 2}),
    ]
    assert set(active[0]) == set(recorded_body("formations_list_active")[0])  # type: ignore[index]


@pytest.mark.parametrize("params", [{}, {"active": "false"}])
async def test_formations_without_active_or_stream_is_a_validation_error(
    client: TestClient, params: dict
):
    """GET /formations neither active nor streamed is Flynn's 400."""
    response = await client.get("/formations", params=params)
    assert response.status == 400
    assert await response.json() == flynn_error(
        "validation_error", "must either request a stream or only active formations"
    )


async def test_protected_app_cannot_be_scaled_to_zero_or_lose_its_running_formation(
    client: TestClient,
):
    """A protected app refuses the PUT or DELETE that would stop its last processes (400 on field
    protected), but may move its processes to a new release as a deploy does."""
    _, old = await setup(client, protected=True)
    assert (await put(client, "app", old["id"], {"web": 0})).status == 200  # nothing was running
    assert (await put(client, "app", old["id"], {"web": 2})).status == 200
    for response in (
        await put(client, "app", old["id"], {"web": 0}),
        await put(client, "app", old["id"], {}),
        await client.delete(f"/apps/app/formations/{old['id']}"),
    ):
        assert response.status == 400
        body = await response.json()
        assert body["code"] == "validation_error" and body["detail"] == {"field": "protected"}
    new = await release(client, uri="https://e/new")
    assert (await put(client, "app", new["id"], {"web": 2})).status == 200
    assert (await put(client, "app", old["id"], {"web": 0})).status == 200
    assert (await client.delete(f"/apps/app/formations/{old['id']}")).status == 200
    assert len(await scale_events(client)) == 5


async def read_frames(response: ClientResponse, count: int) -> list[dict]:
    frames = []
    for _ in range(count):
        frame = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert frame.startswith(b"data: ")
        frames.append(json.loads(frame[6:]))
    return frames


async def test_formation_stream_sends_backlog_then_sentinel_then_changes(client: TestClient):
    """The stream sends every formation updated since `since` (deleted ones without processes),
    last updated first, the zero-time sentinel, then each change as it happens."""
    app, rel = await setup(client)
    gone = await release(client, uri="https://e/2")
    await put(client, "app", gone["id"], {"web": 1})
    await client.delete(f"/apps/app/formations/{gone['id']}")
    await put(client, "app", rel["id"], {"web": 1})
    response = await client.get(
        "/formations", params={"since": "1970-01-01T00:00:00Z"}, headers=STREAM_ACCEPT
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    backlog = await read_frames(response, 3)
    assert [(f["release"]["id"], f.get("processes")) for f in backlog[:2]] == [
        (rel["id"], {"web": 1}),
        (gone["id"], None),
    ]
    assert backlog[2] == {"updated_at": "0001-01-01T00:00:00Z"}
    recorded = json.loads(RECORDED["formations_stream"]["response"]["body"].split("\n\n")[0][6:])
    assert set(backlog[0]) == set(recorded)
    assert set(backlog[0]["app"]) == set(recorded["app"]) - {"release"}  # no release set here
    assert backlog[0]["app"]["id"] == app["id"] and "created_at" in backlog[0]["artifact"]
    await put(client, "app", rel["id"], {"web": 4})
    await client.delete(f"/apps/app/formations/{rel['id']}")
    live = await read_frames(response, 2)
    assert [f.get("processes") for f in live] == [{"web": 4}, None]
    response.close()


async def test_formation_stream_shows_an_app_deletion_as_its_formations_going_away(
    client: TestClient,
):
    """Deleting an app (no scale events) still streams its formations, without processes and
    with only the app's id, as Flynn's formations trigger did."""
    app, rel = await setup(client)
    await put(client, "app", rel["id"], {"web": 1})
    response = await client.get(
        "/formations", params={"since": "1970-01-01T00:00:00Z"}, headers=STREAM_ACCEPT
    )
    await read_frames(response, 2)
    assert (await client.delete("/apps/app")).status == 200
    (gone,) = await read_frames(response, 1)
    assert gone["app"] == {"id": app["id"], "meta": None} and "processes" not in gone
    assert gone["release"]["id"] == rel["id"]
    response.close()


async def test_formation_stream_backlog_starts_at_since(client: TestClient):
    """Formations last updated before `since` are not in the backlog."""
    _, rel = await setup(client)
    old = await (await put(client, "app", rel["id"], {"web": 1})).json()
    later = format_time(parse_time(old["updated_at"]) + timedelta(microseconds=1))
    response = await client.get("/formations", params={"since": later}, headers=STREAM_ACCEPT)
    assert await read_frames(response, 1) == [{"updated_at": "0001-01-01T00:00:00Z"}]
    response.close()


async def test_formation_stream_neither_loses_nor_repeats_changes_made_while_it_opens(
    client: TestClient,
):
    """Scaling while the stream starts: the changes arrive in order up to the last one, and no
    frame is sent twice."""
    _, rel = await setup(client)

    async def scale() -> None:
        for n in range(1, 21):
            assert (await put(client, "app", rel["id"], {"web": n})).status == 200

    writer = asyncio.create_task(scale())
    response = await client.get(
        "/formations", params={"since": "1970-01-01T00:00:00Z"}, headers=STREAM_ACCEPT
    )
    frames: list[dict] = []
    while not frames or frames[-1].get("processes") != {"web": 20}:
        frames += await read_frames(response, 1)
    await writer
    sent = [(f.get("updated_at"), json.dumps(f.get("processes"))) for f in frames]
    assert len(sent) == len(set(sent))
    counts = [f["processes"]["web"] for f in frames if "processes" in f]
    assert counts == sorted(counts)
    response.close()


@pytest.mark.parametrize("params", [{}, {"since": "yesterday"}, {"since": "2015-12-16"}])
async def test_formation_stream_without_a_valid_since_is_a_400_before_streaming(
    client: TestClient, params: dict
):
    """A missing or malformed `since` is a plain 400 validation error, not a stream."""
    response = await client.get("/formations", params=params, headers=STREAM_ACCEPT)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "validation_error" and body["detail"] == {"field": "since"}
