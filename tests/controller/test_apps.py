"""Apps over HTTP: create, list, get, update, delete, with Flynn's shapes, errors and events."""

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.controller.api import flynn_error
from tests.controller.conftest import DOMAIN

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)


async def events_of(client: TestClient, **query: str) -> list[dict]:
    response = await client.get("/events", params=query, headers={"Accept": "application/json"})
    assert response.status == 200
    answer: list[dict] = await response.json()
    return answer


async def create(client: TestClient, **body: object) -> dict:
    response = await client.post("/apps", json=body)
    assert response.status == 200, await response.text()
    answer: dict = await response.json()
    return answer


async def test_create_app_answers_flynns_app_json_and_records_an_app_event(client: TestClient):
    """POST /apps answers 200 with the app (defaults filled) and appends an `app` event."""
    app = await create(client, name="my-app", meta=None)
    assert set(app) == {
        "id",
        "name",
        "meta",
        "strategy",
        "deploy_timeout",
        "created_at",
        "updated_at",
    }
    assert app["name"] == "my-app" and app["meta"] == {} and app["strategy"] == "all-at-once"
    assert app["deploy_timeout"] == 30 and app["created_at"] == app["updated_at"]
    assert app["created_at"].endswith("Z")
    events = await events_of(client, object_types="app")
    assert [(e["object_type"], e["object_id"], e["app"]) for e in events] == [
        ("app", app["id"], app["id"])
    ]
    assert events[0]["data"] == app


async def test_create_app_with_default_domain_also_creates_its_route(client: TestClient):
    """With DEFAULT_ROUTE_DOMAIN set, the app's HTTP route is created in the same append."""
    app = await create(client, name="web1")
    (route,) = [e for e in await events_of(client) if e["object_type"] == "route"]
    assert route["app"] == app["id"]
    assert route["data"]["domain"] == f"web1.{DOMAIN}"
    assert route["data"]["service"] == "web1-web"
    assert route["data"]["parent_ref"] == f"controller/apps/{app['id']}"


async def test_system_apps_get_no_default_route(client: TestClient):
    """An app with meta flynn-system-app=true gets no default route (Flynn)."""
    await create(client, name="sys", meta={"flynn-system-app": "true"})
    assert [e for e in await events_of(client) if e["object_type"] == "route"] == []


async def test_duplicate_name_is_409_object_exists(client: TestClient):
    """A second app with a taken name is refused with Flynn's object_exists error."""
    await create(client, name="dup")
    response = await client.post("/apps", json={"name": "dup"})
    assert response.status == 409
    assert await response.json() == flynn_error("object_exists", 'application "dup" already exists')


async def test_invalid_name_gives_flynns_validation_message(client: TestClient):
    """An invalid name is 400 with exactly the error document Flynn was recorded sending."""
    recorded = RECORDED["app_create_error"]
    response = await client.post(
        "/apps", data=recorded["request"]["body"], headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await response.json() == json.loads(recorded["response"]["body"])


@pytest.mark.parametrize("body", [b"", b"   ", b"{not json", b"\xff\xfe", b"[1, 2"])
async def test_empty_or_malformed_body_is_a_syntax_error(client: TestClient, body: bytes):
    """An empty or non-JSON body is 400 syntax_error, never a 500."""
    response = await client.post("/apps", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["code"] == "syntax_error"


async def test_generated_names_are_unique_and_valid(client: TestClient):
    """Apps created without a name get distinct names that match Flynn's pattern."""
    names = {(await create(client))["name"] for _ in range(5)}
    assert len(names) == 5
    assert all(n.replace("-", "").isalnum() and n == n.lower() for n in names)


async def test_get_app_by_id_or_name_and_list_newest_first(client: TestClient):
    """An app is found by id, by undashed id and by name; the list is newest first."""
    first = await create(client, name="first")
    second = await create(client, name="second")
    for ref in (first["id"], first["id"].replace("-", ""), "first"):
        response = await client.get(f"/apps/{ref}")
        assert response.status == 200 and (await response.json()) == first
    listed = await (await client.get("/apps")).json()
    assert [a["id"] for a in listed] == [second["id"], first["id"]]


@pytest.mark.parametrize("ref", ["nope", "00000000-0000-0000-0000-000000000000", "%20", "a" * 300])
async def test_unknown_app_is_a_bare_404(client: TestClient, ref: str):
    """A missing app is a 404 with an empty body, whatever the reference looks like."""
    response = await client.get(f"/apps/{ref}")
    assert response.status == 404
    assert await response.read() == b""


async def test_client_chosen_ids_are_canonicalized(client: TestClient):
    """An undashed upper-case id given on create comes back dashed and lower-case."""
    app = await create(client, id="ADCCCDB4B1A44209A03A762F4E021632", name="withid")
    assert app["id"] == "adcccdb4-b1a4-4209-a03a-762f4e021632"


async def test_update_app_replaces_meta_and_answers_the_new_updated_at(client: TestClient):
    """POST /apps/:id replaces meta, keeps it on null, and always emits an app event."""
    app = await create(client, name="upd", meta={"a": "1"})
    response = await client.post(
        f"/apps/{app['id']}", json={"id": app["id"], "meta": {"bread": "with hemp"}}
    )
    assert response.status == 200
    updated = await response.json()
    assert updated["meta"] == {"bread": "with hemp"}
    assert updated["updated_at"] > app["updated_at"]
    # `flynn deployment timeout 15`: meta null must not wipe the meta.
    response = await client.post(
        "/apps/upd", json={"id": "upd", "meta": None, "deploy_timeout": 15}
    )
    again = await response.json()
    assert again["meta"] == {"bread": "with hemp"} and again["deploy_timeout"] == 15
    response = await client.post("/apps/upd/meta", json={})
    assert response.status == 200
    assert len(await events_of(client, object_types="app", app_id="upd")) == 4


async def test_update_app_refuses_unknown_keys(client: TestClient):
    """The update body is a raw map in Flynn: an unknown key is a validation error."""
    await create(client, name="strict")
    response = await client.post("/apps/strict", json={"colour": "red"})
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "validation_error"
    assert (
        body["message"]
        == 'Additional properties aren\'t allowed, found "colour" as one of its keys'
    )


async def test_delete_app_removes_it_with_its_routes_in_one_append(client: TestClient):
    """DELETE /apps/:id answers an empty 200; routes and app go in one atomic append."""
    app = await create(client, name="gone")
    response = await client.delete("/apps/gone")
    assert response.status == 200 and await response.read() == b""
    assert (await client.get(f"/apps/{app['id']}")).status == 404
    events = await events_of(client, app_id=app["id"])
    kinds = [e["object_type"] for e in reversed(events)]
    assert kinds == ["app", "route", "route_deletion", "app_deletion"]
    deletion = events[0]["data"]
    assert deletion["app_deletion"]["app"] == app["id"]
    assert [r["domain"] for r in deletion["app_deletion"]["deleted_routes"]] == [f"gone.{DOMAIN}"]
    # The name is free again.
    await create(client, name="gone")


async def test_protected_app_cannot_be_deleted_until_unprotected(client: TestClient):
    """A protected app refuses deletion with 400 on field protected; lifting it allows it."""
    await create(client, name="safe", protected=True)
    response = await client.delete("/apps/safe")
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "validation_error" and body["detail"] == {"field": "protected"}
    assert (await client.post("/apps/safe", json={"protected": False})).status == 200
    assert (await client.delete("/apps/safe")).status == 200
