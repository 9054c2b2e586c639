"""DELETE /apps/:app/releases/:id and the releases an app deletion reports, through the API,
as the `flynn` CLI drives them (Flynn HEAD: controller/release.go, worker/app_deletion)."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.controller.api import (
    create_app,
    create_provider,
    events_of,
    flynn_error,
    ok_json,
    provision,
)
from tests.controller.conftest import DOMAIN
from tests.controller.provider_server import ProviderServer, running_provider

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def server() -> AsyncIterator[ProviderServer]:
    async with running_provider() as provider_server:
        yield provider_server


async def releases_of(client: TestClient, app: str, n: int) -> list[dict[str, Any]]:
    """`n` releases of `app` on one artifact, oldest first."""
    body = {"type": "file", "uri": "file:///srv/app"}
    artifact = await ok_json(await client.post("/artifacts", json=body))
    created = []
    for _ in range(n):
        release = {"artifacts": [artifact["id"]], "app_id": app, "processes": {"web": {}}}
        created.append(await ok_json(await client.post("/releases", json=release)))
    return created


async def error_of(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def next_event(response: ClientResponse) -> dict[str, Any]:
    """The next event an open /events stream sends."""
    async with asyncio.timeout(10):
        while True:
            line = await response.content.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                answer: dict[str, Any] = json.loads(line[6:])
                return answer


async def test_a_release_is_deleted_unless_it_is_current_scaled_up_or_not_the_apps(
    client: TestClient,
):
    """The current release and a scaled-up one are 400s in Flynn's shape, another app's or an
    unknown one a bare 404; an idle one goes from every list, its artifact stays."""
    app = await create_app(client, "rd")
    await create_app(client, "other")
    r1, r2, r3 = await releases_of(client, "rd", 3)
    (foreign,) = await releases_of(client, "other", 1)
    await ok_json(await client.put("/apps/rd/release", json={"id": r3["id"]}))
    await ok_json(
        await client.put(f"/apps/rd/formations/{r2['id']}", json={"processes": {"web": 1}})
    )

    current = await error_of(await client.delete(f"/apps/rd/releases/{r3['id']}"), 400)
    assert current == flynn_error("validation_error", "cannot delete current app release")
    scaled = await error_of(await client.delete(f"/apps/rd/releases/{r2['id']}"), 400)
    assert scaled["message"] == (
        "cannot delete a release that is scaled up (web=1): scale it to zero first"
    )
    for path in [f"/apps/rd/releases/{foreign['id']}", f"/apps/rd/releases/{MISSING}",
                 "/apps/rd/releases/not-a-uuid", f"/apps/nobody/releases/{r1['id']}"]:  # fmt: skip
        response = await client.delete(path)
        assert response.status == 404 and await response.read() == b"", path

    await ok_json(await client.put(f"/apps/rd/formations/{r2['id']}", json={"processes": {}}))
    for release in (r1, r2):
        response = await client.delete(f"/apps/{app['id']}/releases/{release['id']}")
        assert response.status == 200 and await response.read() == b""
        assert (await client.get(f"/releases/{release['id']}")).status == 404
    listed = await ok_json(await client.get("/apps/rd/releases"))
    assert [r["id"] for r in listed] == [r3["id"]]
    assert (await client.get(f"/apps/rd/formations/{r2['id']}")).status == 404
    assert (await client.get(f"/artifacts/{r1['artifacts'][0]}")).status == 200
    assert (await client.delete(f"/apps/rd/releases/{r1['id']}")).status == 404  # gone already


async def test_the_cli_reads_the_deletion_from_the_stream_it_opened_first(client: TestClient):
    """`flynn release delete` opens the stream, sends DELETE, then reads Flynn's
    release_deletion payload from it: no files, no other app left."""
    app = await create_app(client, "cli")
    old, new = await releases_of(client, "cli", 2)
    await ok_json(await client.put("/apps/cli/release", json={"id": new["id"]}))
    query = {"app_id": "cli", "object_id": old["id"], "object_types": "release_deletion"}
    headers = {"Accept": "text/event-stream", "Last-Event-Id": "0"}
    stream = await client.get("/events", params=query, headers=headers)
    assert stream.status == 200
    assert (await client.delete(f"/apps/cli/releases/{old['id']}")).status == 200
    event = await next_event(stream)
    stream.close()
    assert (event["object_type"], event["object_id"], event["app"]) == (
        "release_deletion",
        old["id"],
        app["id"],
    )
    assert event["data"] == {
        "release_deletion": {
            "app": app["id"],
            "release": old["id"],
            "remaining_apps": [],
            "deleted_files": [],
        },
        "error": "",
    }


async def test_a_release_another_app_uses_stays_listed_for_it(client: TestClient):
    """A release two apps use leaves the one deleting it and names the other as remaining."""
    first, second = await create_app(client, "first"), await create_app(client, "second")
    artifact = await ok_json(
        await client.post("/artifacts", json={"type": "file", "uri": "file:///a"})
    )
    shared = await ok_json(await client.post("/releases", json={"artifact": artifact["id"]}))
    for name in ("first", "second"):
        await ok_json(await client.put(f"/apps/{name}/formations/{shared['id']}", json={}))
    assert (await client.delete(f"/apps/first/releases/{shared['id']}")).status == 200
    assert await ok_json(await client.get("/apps/first/releases")) == []
    assert [r["id"] for r in await ok_json(await client.get("/apps/second/releases"))] == [
        shared["id"]
    ]
    assert (await client.get(f"/releases/{shared['id']}")).status == 200
    (event,) = await events_of(client, object_types="release_deletion")
    assert event["app"] == first["id"]
    assert event["data"]["release_deletion"]["remaining_apps"] == [second["id"]]


async def test_app_deletion_reports_the_routes_releases_and_resources_it_deleted(
    client: TestClient, server: ProviderServer
):
    """`flynn delete` prints the counts of the app_deletion event: an app with nine releases,
    its default route and a resource of its own reports all of them, each release also
    with its own release_deletion event, newest first."""
    app = await create_app(client, "nine")
    releases = await releases_of(client, "nine", 9)
    await ok_json(await client.put("/apps/nine/release", json={"id": releases[-1]["id"]}))
    await create_provider(client, server)
    resource = await provision(client, "postgres", ["nine"])
    stream = await client.get(
        "/events",
        params={"app_id": "nine", "object_types": "app_deletion"},
        headers={"Accept": "text/event-stream"},
    )
    assert (await client.delete("/apps/nine")).status == 200
    deletion = (await next_event(stream))["data"]
    stream.close()
    assert deletion["error"] == "" and deletion["app_deletion"]["app"] == app["id"]
    deleted = deletion["app_deletion"]
    assert [r["domain"] for r in deleted["deleted_routes"]] == [f"nine.{DOMAIN}"]
    assert [r["id"] for r in deleted["deleted_releases"]] == [r["id"] for r in reversed(releases)]
    assert deleted["deleted_releases"][0] == releases[-1]
    assert [r["id"] for r in deleted["deleted_resources"]] == [resource["id"]]
    events = await events_of(client, app_id=app["id"], object_types="release_deletion")
    assert [e["object_id"] for e in reversed(events)] == [r["id"] for r in reversed(releases)]
    for release in releases:
        assert (await client.get(f"/releases/{release['id']}")).status == 404
