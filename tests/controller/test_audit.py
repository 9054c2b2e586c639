"""GET /audit: who did what and when, newest first, a page at a time, filtered by actor,
app and time, and to what the calling key may see."""

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from domain.keys import bootstrap_name
from tests.controller.conftest import AUTH_KEY


def basic(secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth("", secret)}


async def ok(response: Any) -> Any:
    assert response.status == 200, await response.text()
    return await response.json()


async def make_key(client: TestClient, name: str, scope: str, apps: list[str] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "scope": scope} | ({"apps": apps} if apps else {})
    return str((await ok(await client.post("/keys", json=body)))["secret"])


@pytest.fixture
async def story(client: TestClient) -> dict[str, Any]:
    """An admin makes app "kept" and a deploy key "ci"; "ci" makes app "gone", then deletes it."""
    kept = await ok(await client.post("/apps", json={"name": "kept"}))
    ci = basic(await make_key(client, "ci", "deploy"))
    gone = await ok(await client.post("/apps", json={"name": "gone"}, headers=ci))
    deleted = await client.delete("/apps/gone", headers=ci)
    assert deleted.status == 200
    return {"kept": kept, "gone": gone}


async def test_the_audit_names_who_did_each_thing(client: TestClient, story: dict[str, Any]):
    """?actor= keeps the events of one key, its cascades included, newest first, each with
    a line that says what happened and no event data."""
    page = await ok(await client.get("/audit?actor=ci"))
    entries = page["entries"]
    assert page["next_before_id"] is None
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert {e["actor"]["key"] for e in entries} == {"ci"}
    assert {"AppCreated", "AppDeleted"} <= {e["type"] for e in entries}
    assert any(e["actor"].get("component") == "app_deletion" for e in entries)
    assert all(e["summary"] and "data" not in e for e in entries)
    admin = await ok(await client.get(f"/audit?actor={bootstrap_name(AUTH_KEY)}"))
    assert story["kept"]["id"] in {e.get("app") for e in admin["entries"]}
    assert not {e["id"] for e in admin["entries"]} & {e["id"] for e in entries}


async def test_the_audit_filters_by_app_and_time(client: TestClient, story: dict[str, Any]):
    """?app_id= (a deleted app too) keeps that app's events; ?until= before the first event
    leaves none; ?since= after the last leaves none; a time that is not one is a 400."""
    gone = await ok(await client.get(f"/audit?app_id={story['gone']['id']}"))
    assert gone["entries"] and {e["app"] for e in gone["entries"]} == {story["gone"]["id"]}
    everything = (await ok(await client.get("/audit")))["entries"]
    first, last = everything[-1]["created_at"], everything[0]["created_at"]
    until = await ok(await client.get("/audit", params={"until": "2000-01-01T00:00:00Z"}))
    assert until["entries"] == []
    since = await ok(await client.get("/audit", params={"since": "2999-01-01T00:00:00Z"}))
    assert since["entries"] == []
    window = await ok(await client.get("/audit", params={"since": first, "until": last}))
    assert len(window["entries"]) == len(everything)
    bad = await client.get("/audit?since=yesterday")
    assert bad.status == 400 and (await bad.json())["code"] == "validation_error"


async def test_the_audit_comes_a_page_at_a_time(client: TestClient, story: dict[str, Any]):
    """?count= pages follow each other by next_before_id, each newest first, none repeated,
    until the whole audit is read."""
    everything = [e["id"] for e in (await ok(await client.get("/audit")))["entries"]]
    assert len(everything) > 4
    seen: list[int] = []
    cursor: int | None = None
    while True:
        params = {"count": "2"} | ({"before_id": str(cursor)} if cursor else {})
        page = await ok(await client.get("/audit", params=params))
        assert len(page["entries"]) <= 2
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_before_id"]
        if cursor is None:
            break
    assert seen == everything


@pytest.mark.parametrize("count", ["0", "-1", "1001", "x"])
async def test_a_count_outside_one_to_a_thousand_is_a_400(client: TestClient, count: str):
    """?count= is what the OpenAPI document says (1 to 1000): anything else is refused,
    never quietly replaced."""
    response = await client.get("/audit", params={"count": count})
    assert response.status == 400
    assert (await response.json())["detail"] == {"field": "count"}


async def test_a_read_key_sees_its_apps_and_no_keys(client: TestClient, story: dict[str, Any]):
    """A read key limited to one app sees only that app's events, none of the keys' own;
    a stream key may not read the audit at all."""
    limited = basic(await make_key(client, "auditor", "read", ["kept"]))
    entries = (await ok(await client.get("/audit", headers=limited)))["entries"]
    assert entries and {e.get("app") for e in entries} == {story["kept"]["id"]}
    unlimited = basic(await make_key(client, "reader", "read"))
    seen = (await ok(await client.get("/audit", headers=unlimited)))["entries"]
    types = {e["object_type"] for e in seen}
    assert "app" in types and not types & {"key", "key_revocation"}
    admin_types = {e["object_type"] for e in (await ok(await client.get("/audit")))["entries"]}
    assert "key" in admin_types
    stream = basic(await make_key(client, "watcher", "stream"))
    assert (await client.get("/audit", headers=stream)).status == 403
