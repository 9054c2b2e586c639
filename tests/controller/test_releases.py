"""Artifacts and releases over HTTP: Flynn's shapes, defaults, idempotency and errors."""

import json
from pathlib import Path

from aiohttp.test_utils import TestClient

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)
JSON_ACCEPT = {"Accept": "application/json"}


async def post(client: TestClient, path: str, body: object) -> dict:
    response = await client.post(path, json=body)
    assert response.status == 200, await response.text()
    answer: dict = await response.json()
    return answer


async def artifact(client: TestClient, uri: str = "https://example.com/slug.tgz") -> dict:
    return await post(client, "/artifacts", {"type": "docker", "uri": uri})


async def test_artifact_create_is_idempotent_on_type_and_uri(client: TestClient):
    """Posting the same (type, uri) twice answers the same artifact and records one event."""
    first = await artifact(client)
    second = await artifact(client)
    assert first == second
    assert set(first) == {"id", "type", "uri", "created_at"}
    events = await (
        await client.get("/events", params={"object_types": "artifact"}, headers=JSON_ACCEPT)
    ).json()
    assert len(events) == 1 and events[0]["data"] == first and "app" not in events[0]


async def test_artifacts_list_and_get(client: TestClient):
    """GET /artifacts lists newest first; GET /artifacts/:id finds one; unknown or bad is 404."""
    a = await artifact(client, "https://e/a")
    b = await artifact(client, "https://e/b")
    assert [x["id"] for x in await (await client.get("/artifacts")).json()] == [b["id"], a["id"]]
    assert await (await client.get(f"/artifacts/{a['id']}")).json() == a
    for ref in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = await client.get(f"/artifacts/{ref}")
        assert response.status == 404 and await response.read() == b""


async def test_release_create_fills_resource_defaults_like_the_recording(client: TestClient):
    """A release answers Flynn's recorded shape, with memory and max_fd defaults filled in."""
    recorded = RECORDED["release_create"]
    body = json.loads(recorded["request"]["body"])
    body["artifact"] = (await artifact(client))["id"]
    release = await post(client, "/releases", body)
    expected = json.loads(recorded["response"]["body"])
    assert set(release) == set(expected)
    assert release["processes"] == expected["processes"]
    events = await (
        await client.get("/events", params={"object_types": "release"}, headers=JSON_ACCEPT)
    ).json()
    assert events[0]["data"] == release and "app" not in events[0]


async def test_release_limit_without_request_gets_request_equal_to_limit(client: TestClient):
    """A given limit without a request gets request = limit; other defaults stay."""
    release = await post(
        client, "/releases", {"processes": {"web": {"resources": {"memory": {"limit": 512}}}}}
    )
    resources = release["processes"]["web"]["resources"]
    assert resources["memory"] == {"request": 512, "limit": 512}
    assert resources["max_fd"] == {"request": 10000, "limit": 10000}


async def test_unset_resource_values_take_flynns_defaults_or_stay_unset(client: TestClient):
    """A null limit of a default resource takes the default limit; a request alone keeps the
    default limit; a resource of another name keeps what was given, nulls left out."""
    resources = {
        "memory": {"limit": None},
        "max_fd": {"request": 5},
        "cpu": {"limit": None},
        "temp_disk": {"request": None, "limit": 7},
    }
    release = await post(client, "/releases", {"processes": {"web": {"resources": resources}}})
    assert release["processes"]["web"]["resources"] == {
        "memory": {"request": 1073741824, "limit": 1073741824},
        "max_fd": {"request": 5, "limit": 10000},
        "cpu": {},
        "temp_disk": {"limit": 7},
    }


async def test_release_refuses_an_empty_env_key_and_an_unknown_artifact(client: TestClient):
    """An env var with an empty name, or an artifact that does not exist, is a 400."""
    response = await client.post("/releases", json={"env": {"": "v"}})
    assert response.status == 400 and (await response.json())["detail"] == {"field": "env"}
    response = await client.post(
        "/releases", json={"artifact": "00000000-0000-4000-8000-000000000000"}
    )
    assert response.status == 400 and (await response.json())["code"] == "validation_error"


async def test_echoed_release_from_the_cli_is_accepted(client: TestClient):
    """`flynn env set` re-posts the previous release whole: server-made fields are ignored."""
    first = await post(
        client, "/releases", {"artifact": (await artifact(client))["id"], "env": {"A": "1"}}
    )
    echoed = {k: v for k, v in first.items() if k != "id"} | {"env": {"A": "2"}}
    second = await post(client, "/releases", echoed)
    assert second["id"] != first["id"] and second["env"] == {"A": "2"}
    assert second["processes"] == first["processes"] if "processes" in first else True


async def test_set_and_get_app_release_and_list_app_releases(client: TestClient):
    """PUT /apps/:id/release answers the release and records app_release with prev_release."""
    app = await post(client, "/apps", {"name": "rel"})
    assert (await client.get("/apps/rel/release")).status == 404
    r1 = await post(client, "/releases", {"env": {"n": "1"}})
    r2 = await post(client, "/releases", {"env": {"n": "2"}})
    assert await (await client.put("/apps/rel/release", json={"id": r1["id"]})).json() == r1
    assert (
        await (await client.put(f"/apps/{app['id']}/release", json={"id": r2["id"]})).json() == r2
    )
    assert await (await client.get("/apps/rel/release")).json() == r2
    assert (await (await client.get("/apps/rel")).json())["release"] == r2["id"]
    events = await (
        await client.get("/events", params={"object_types": "app_release"}, headers=JSON_ACCEPT)
    ).json()
    assert [e["object_id"] for e in events] == [r2["id"], r1["id"]]
    assert events[0]["data"] == {"prev_release": r1, "release": r2}
    assert events[1]["data"] == {"release": r1}
    listed = await (await client.get("/apps/rel/releases")).json()
    assert [r["id"] for r in listed] == [r2["id"], r1["id"]]


async def test_set_app_release_to_an_unknown_release_is_flynns_400(client: TestClient):
    """An unknown release id gives Flynn's message without a field."""
    await post(client, "/apps", {"name": "rel2"})
    response = await client.put(
        "/apps/rel2/release", json={"id": "00000000-0000-4000-8000-000000000000"}
    )
    assert response.status == 400
    assert await response.json() == {
        "code": "validation_error",
        "message": "could not find release with ID 00000000-0000-4000-8000-000000000000",
        "retry": False,
    }


async def test_releases_list_and_get(client: TestClient):
    """GET /releases lists newest first; GET /releases/:id; a malformed id is a 404."""
    r1 = await post(client, "/releases", {})
    r2 = await post(client, "/releases", {})
    assert [r["id"] for r in await (await client.get("/releases")).json()] == [r2["id"], r1["id"]]
    assert await (await client.get(f"/releases/{r1['id']}")).json() == r1
    assert (await client.get("/releases/123")).status == 404
