"""Who may call what: every operation of the OpenAPI document, called with a key of each scope
(and an unknown one), is let in or refused as its declared scope says; a key limited to some
apps sees and changes only those, on every app-scoped route and on the event stream."""

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from domain.keys import Scope

RANK = {Scope.STREAM: 0, Scope.READ: 1, Scope.DEPLOY: 2, Scope.ADMIN: 3}
#: The issue's policy, independent of the URL table: admin only for these, the rest of the
#: writes deploy, the rest of the reads read.
ADMIN_ONLY = {
    ("POST", "/providers"),
    ("PUT", "/domain"),
    ("GET", "/backup"),
    ("POST", "/keys"),
    ("GET", "/keys"),
    ("DELETE", "/keys/{name}"),
}
#: Routes a `stream` key may call when it asks for the stream.
STREAMS = ("/events", "/formations?since=2020-01-01T00:00:00Z", "/apps/{app}/log")
PARAMETER = re.compile(r"\{[^}]+\}")
JSON = dict[str, Any]
#: Overrides the client's own key, so that ?key= is the one carried.
NO_AUTH = {"Authorization": ""}


def basic(secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth("", secret)}


async def make_key(client: TestClient, name: str, scope: str, apps: list[str] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "scope": scope}
    if apps is not None:
        body["apps"] = apps
    answer = await client.post("/keys", json=body)
    assert answer.status == 200, await answer.text()
    return str((await answer.json())["secret"])


async def operations(client: TestClient) -> list[tuple[str, str, JSON]]:
    """(method, path, operation) of every keyed operation of the OpenAPI document."""
    doc = await (await client.get("/openapi.json")).json()
    found = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if "x-evenflow-scope" in operation:
                found.append((method.upper(), path, operation))
    return found


def call(client: TestClient, method: str, path: str, app: str, headers: dict[str, str]) -> Any:
    """One request of `method` on `path`, its app `app` and other parameters made up."""
    concrete = PARAMETER.sub(lambda m: app if m.group(0) == "{app}" else "made-up", path)
    body: JSON | None = None if method in ("GET", "DELETE") else {}
    headers = {"Accept": "application/json", **headers}
    return client.request(method, concrete, json=body, headers=headers)


async def test_the_declared_scopes_are_the_issues_policy(client: TestClient):
    """The OpenAPI document declares admin for providers, the domain, backups and keys,
    deploy for every other write and read for every other read."""
    for method, path, operation in await operations(client):
        if (method, path) in ADMIN_ONLY:
            wanted = "admin"
        else:
            wanted = "read" if method == "GET" else "deploy"
        assert operation["x-evenflow-scope"] == wanted, (method, path)


async def test_every_route_lets_in_or_refuses_each_scope_as_declared(client: TestClient):
    """Each operation, with a key of each scope: a lesser scope is a 403 in Flynn's error
    shape, an equal or greater one passes the edge; an unknown key is a bare 401."""
    secrets = {scope: await make_key(client, f"k-{scope}", str(scope)) for scope in Scope}
    walked = 0
    for method, path, operation in await operations(client):
        needed = Scope(operation["x-evenflow-scope"])
        unknown = await call(client, method, path, "nowhere", basic("not-a-key"))
        assert (unknown.status, await unknown.read()) == (401, b""), (method, path)
        for scope, secret in secrets.items():
            answer = await call(client, method, path, "nowhere", basic(secret))
            if RANK[scope] < RANK[needed]:
                assert answer.status == 403, (method, path, scope)
                doc = await answer.json()
                assert doc["code"] == "forbidden" and str(scope) in doc["message"]
                assert set(doc) <= {"code", "message", "detail", "retry"}
            else:
                assert answer.status not in (401, 403), (method, path, scope, answer.status)
            await answer.release()
        walked += 1
    assert walked >= 50


async def test_a_stream_key_may_follow_streams_only(client: TestClient):
    """A `stream` key opens the event, formation and log streams, but reads nothing else,
    not even those routes' lists."""
    await client.post("/apps", json={"name": "streamed"})
    secret = await make_key(client, "watcher", "stream")
    for path in STREAMS:
        concrete = path.replace("{app}", "streamed")
        headers = {**basic(secret), "Accept": "text/event-stream"}
        async with client.get(concrete, headers=headers) as stream:
            assert stream.status == 200, (path, await stream.text())
        listed = await client.get(concrete, headers={**basic(secret), "Accept": "application/json"})
        assert listed.status == 403, path
    assert (
        await client.get(
            f"/events?key={secret}", headers={**NO_AUTH, "Accept": "text/event-stream"}
        )
    ).status == 200


async def test_an_app_limited_key_sees_and_changes_only_its_apps(client: TestClient):
    """On every route of an app in its path, another app is a bare 404 (even for writes,
    before anything happens); its own app is answered as for an unlimited key; lists are
    filtered; routes not for such keys are a 403."""
    mine = await (await client.post("/apps", json={"name": "mine"})).json()
    theirs = await (await client.post("/apps", json={"name": "theirs"})).json()
    secret = await make_key(client, "limited", "deploy", ["mine"])
    admin = dict(client.session.headers)
    for method, path, operation in await operations(client):
        limit = operation["x-evenflow-apps"]
        if limit == "path":
            other = await call(client, method, path, "theirs", basic(secret))
            assert (other.status, await other.read()) == (404, b""), (method, path)
            if method == "GET":
                own = await call(client, method, path, "mine", basic(secret))
                as_admin = await call(client, method, path, "mine", admin)
                assert own.status == as_admin.status, (method, path)
                await own.release()
                await as_admin.release()
        elif limit == "refuse" and operation["x-evenflow-scope"] != "admin":
            refused = await call(client, method, path, "mine", basic(secret))
            assert refused.status == 403, (method, path)
            await refused.release()
    assert (await client.get("/apps/theirs", headers=basic(secret))).status == 404
    listed = await (await client.get("/apps", headers=basic(secret))).json()
    assert [a["id"] for a in listed] == [mine["id"]]
    as_list = {**basic(secret), "Accept": "application/json"}
    events = await (await client.get("/events", headers=as_list)).json()
    assert events and {e.get("app") for e in events} == {mine["id"]}
    assert theirs["id"] not in str(events)


async def test_an_app_limited_keys_event_stream_holds_only_its_apps(client: TestClient):
    """Following the event stream with a key limited to one app, events of another app
    never arrive, and its own do."""
    await client.post("/apps", json={"name": "mine"})
    await client.post("/apps", json={"name": "theirs"})
    secret = await make_key(client, "follower", "stream", ["mine"])
    headers = {**basic(secret), "Accept": "text/event-stream"}
    async with client.get("/events?past=true", headers=headers) as stream:
        assert stream.status == 200
        await client.post("/apps/theirs/meta", json={"meta": {"n": "1"}})
        await client.post("/apps/mine/meta", json={"meta": {"n": "2"}})
        seen: list[bytes] = []
        async with asyncio.timeout(5):
            while not any(b'"n":"2"' in line for line in seen):
                seen.append(await stream.content.readline())
    data = b"".join(seen)
    assert b"theirs" not in data and b'"n":"1"' not in data


@pytest.mark.parametrize("scope", ["deploy", "read", "stream"])
async def test_keys_and_backups_are_for_admins_only(client: TestClient, scope: str):
    """GET /backup holds every secret and key hash, /keys manages keys: both are 403 to
    every scope but admin, whatever ?key= or Basic auth carries the key."""
    secret = await make_key(client, f"not-admin-{scope}", scope)
    assert (await client.get("/backup", headers=basic(secret))).status == 403
    assert (await client.get(f"/backup?key={secret}", headers=NO_AUTH)).status == 403
    assert (await client.get("/keys", headers=basic(secret))).status == 403
    made = await client.post("/keys", json={"name": "x", "scope": "admin"}, headers=basic(secret))
    assert made.status == 403
