"""GET /events as a JSON list and GET /events/:id: Flynn's envelope, filters and errors."""

import pytest
from aiohttp.test_utils import TestClient

JSON_ACCEPT = {"Accept": "application/json"}


async def listed(client: TestClient, **params: str) -> list[dict]:
    response = await client.get("/events", params=params, headers=JSON_ACCEPT)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/json"
    answer: list[dict] = await response.json()
    return answer


async def seed(client: TestClient) -> tuple[dict, dict]:
    a = await (await client.post("/apps", json={"name": "ev-a"})).json()
    b = await (await client.post("/apps", json={"name": "ev-b"})).json()
    await client.post("/apps/ev-a", json={"meta": {"x": "y"}})
    return a, b


async def test_list_is_newest_first_with_flynns_envelope(client: TestClient):
    """Events come newest first, each {id, app, object_type, object_id, data, created_at}, and
    Evenflow's `meta` (its actor) when it has one."""
    await seed(client)
    events = await listed(client)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)
    flynns = {"id", "app", "object_type", "object_id", "data", "created_at"}
    assert set(events[0]) == flynns | {"meta"}
    actor = events[0]["meta"]["actor"]  # who and which request; not from where
    assert set(actor) == {"key", "request_id"} and actor["key"].startswith("auth_key:")


async def test_filters_by_app_name_or_id_object_types_and_object_id(client: TestClient):
    """app_id takes an id or a name; object_types a comma list; object_id one object."""
    a, b = await seed(client)
    by_name = await listed(client, app_id="ev-a")
    assert by_name == await listed(client, app_id=a["id"])
    assert {e["app"] for e in by_name} == {a["id"]}
    assert {e["object_type"] for e in await listed(client, object_types="route,app_deletion")} == {
        "route"
    }
    assert [
        e["object_id"] for e in await listed(client, object_types="app", object_id=b["id"])
    ] == [b["id"]]
    assert await listed(client, object_types="nothing") == []


async def test_before_since_and_count_bound_the_list(client: TestClient):
    """before_id, since_id and count select a window of ids, newest first."""
    await seed(client)
    ids = [e["id"] for e in await listed(client)]
    assert [e["id"] for e in await listed(client, count="2")] == ids[:2]
    assert [e["id"] for e in await listed(client, before_id=str(ids[1]))] == ids[2:]
    assert [e["id"] for e in await listed(client, since_id=str(ids[2]))] == ids[:2]


@pytest.mark.parametrize("name", ["before_id", "since_id", "count"])
@pytest.mark.parametrize("value", ["x", "-1", "1.5", "99999999999999999999999"])
async def test_invalid_integers_are_flynns_400(client: TestClient, name: str, value: str):
    """A malformed or out-of-range integer is 400 "<name> is invalid" with the field."""
    response = await client.get("/events", params={name: value}, headers=JSON_ACCEPT)
    assert response.status == 400
    assert await response.json() == {
        "code": "validation_error",
        "message": f"{name} is invalid",
        "detail": {"field": name},
        "retry": False,
    }


async def test_unknown_app_filter_is_a_404(client: TestClient):
    """Filtering by an app that does not exist is a bare 404, as in Flynn."""
    response = await client.get("/events", params={"app_id": "nope"}, headers=JSON_ACCEPT)
    assert response.status == 404 and await response.read() == b""


async def test_a_deleted_apps_history_stays_readable_by_id(client: TestClient):
    """After deletion, the app's events are still listed when asked by id."""
    a, _ = await seed(client)
    await client.delete("/apps/ev-a")
    kinds = [e["object_type"] for e in await listed(client, app_id=a["id"])]
    assert kinds[0] == "app_deletion" and "app" in kinds


async def test_get_one_event_and_404s(client: TestClient):
    """GET /events/:id answers the envelope; unknown, zero, negative or malformed ids are 404s."""
    await seed(client)
    newest = (await listed(client, count="1"))[0]
    assert await (await client.get(f"/events/{newest['id']}")).json() == newest
    for ref in ("999999", "0", "-3", "abc", "99999999999999999999999"):
        response = await client.get(f"/events/{ref}")
        assert response.status == 404 and await response.read() == b""
