"""Providers and resources over HTTP, against a real provider server on 127.0.0.1."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from aiohttp.test_utils import TestClient

from controller import keys
from eventstore.store import StoreUnavailableError
from service.settings import Settings
from tests.controller.api import (
    create_app,
    create_provider,
    events_of,
    flynn_error,
    ok_json,
    provision,
)
from tests.controller.provider_server import ProviderServer, running_provider

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flynn" / "controller.json").read_text()
)
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A short provider timeout, so that the stalled provider test is quick."""
    return attrs.evolve(settings, provider_timeout=1.0)


@pytest.fixture
async def server() -> AsyncIterator[ProviderServer]:
    async with running_provider() as provider_server:
        yield provider_server


async def test_create_provider_answers_it_and_records_a_provider_event(
    client: TestClient, server: ProviderServer
):
    """POST /providers answers Flynn's provider JSON and appends a `provider` event."""
    provider = await create_provider(client, server, "pg")
    assert list(provider) == ["id", "url", "name", "created_at", "updated_at"]
    assert (provider["name"], provider["url"]) == ("pg", server.url)
    (event,) = await events_of(client, object_types="provider")
    assert (event["object_id"], event["data"]) == (provider["id"], provider)
    assert "app" not in event


async def test_get_provider_by_id_or_name_and_list_newest_first(client: TestClient):
    """A provider is found by id and by name; the list is newest first."""
    first = await ok_json(await client.post("/providers", json={"name": "a", "url": "http://a/x"}))
    second = await ok_json(await client.post("/providers", json={"name": "b", "url": "http://b/x"}))
    for ref in (first["id"], "a"):
        assert await ok_json(await client.get(f"/providers/{ref}")) == first
    listed = await ok_json(await client.get("/providers"))
    assert [p["id"] for p in listed] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "pg", "url": "http://elsewhere/db"}, 'provider "pg" already exists'),
        (
            {"name": "other", "url": "http://pg/db"},
            'provider with url "http://pg/db" already exists',
        ),
    ],
)
async def test_duplicate_provider_name_or_url_is_409_object_exists(
    client: TestClient, body: dict, message: str
):
    """A taken name or url is 409 object_exists (Flynn answers a 500)."""
    await ok_json(await client.post("/providers", json={"name": "pg", "url": "http://pg/db"}))
    response = await client.post("/providers", json=body)
    assert response.status == 409
    assert await response.json() == flynn_error("object_exists", message)
    assert len(await events_of(client, object_types="provider")) == 1


@pytest.mark.parametrize(
    "body", [{"name": "pg"}, {"url": "http://pg/db"}, {"name": "", "url": "x"}]
)
async def test_provider_needs_a_name_and_a_url(client: TestClient, body: dict):
    """A provider without a valid name or url is a 400 validation_error."""
    response = await client.post("/providers", json=body)
    assert response.status == 400
    assert (await response.json())["code"] == "validation_error"


@pytest.mark.parametrize(
    "path", ["/providers/nope", f"/providers/{MISSING}", "/providers/nope/resources"]
)
async def test_unknown_provider_is_a_bare_404(client: TestClient, path: str):
    """A missing provider is a 404 with an empty body."""
    response = await client.get(path)
    assert response.status == 404 and await response.read() == b""


async def test_provision_calls_the_provider_and_records_one_event_per_app(
    client: TestClient, server: ProviderServer
):
    """The config goes to the provider; the resource links apps by name or id, one event each."""
    provider = await create_provider(client, server)
    web, worker = await create_app(client, "web"), await create_app(client, "worker")
    resource = await provision(client, "postgres", ["web", worker["id"]], {"size": "small"})
    assert [(c.method, c.body) for c in server.calls] == [("POST", {"size": "small"})]
    assert resource["provider"] == provider["id"]
    assert resource["external_id"] == "/databases/db1"
    assert resource["env"] == {"DATABASE_URL": "postgres://user1@db/db1", "PGDATABASE": "db1"}
    assert resource["apps"] == [web["id"], worker["id"]]
    events = await events_of(client, object_types="resource")
    assert sorted(e["app"] for e in events) == sorted([web["id"], worker["id"]])
    assert all(e["object_id"] == resource["id"] and e["data"] == resource for e in events)
    path = f"/providers/{provider['id']}/resources/{resource['id']}"
    assert await ok_json(await client.get(path)) == resource
    assert await ok_json(await client.get("/apps/web/resources")) == [resource]


async def test_provision_without_apps_sends_an_empty_config_and_records_one_event(
    client: TestClient, server: ProviderServer
):
    """`config: null` is sent as {}; with no app linked, one event without an app is recorded."""
    await create_provider(client, server)
    resource = await provision(client, "postgres")
    assert server.calls[0].body == {}
    assert "apps" not in resource
    (event,) = await events_of(client, object_types="resource")
    assert "app" not in event and event["data"] == resource


async def test_provision_for_an_unknown_app_is_400_and_provisions_nothing(
    client: TestClient, server: ProviderServer
):
    """Apps are resolved before the provider is called: an unknown one is a 400, no call."""
    await create_provider(client, server)
    body = {"apps": ["nope"], "config": {}}
    response = await client.post("/providers/postgres/resources", json=body)
    assert response.status == 400
    assert await response.json() == flynn_error(
        "validation_error", "apps could not find app with ID nope", field="apps"
    )
    assert server.calls == []


async def test_failing_provider_is_a_502_and_records_nothing(
    client: TestClient, server: ProviderServer
):
    """A provider answering 500 makes a 502 saying so, never Flynn's bare 500."""
    await create_provider(client, server)
    server.fail_provision = True
    response = await client.post("/providers/postgres/resources", json={})
    assert response.status == 502
    body = await response.json()
    assert body["code"] == "unknown_error" and body["retry"] is True
    assert body["message"] == (
        f"resource provider answered 500 to POST {server.url}: out of capacity"
    )
    assert await events_of(client, object_types="resource") == []


async def test_stalled_provider_times_out_with_a_502(client: TestClient, server: ProviderServer):
    """A provider slower than Settings.provider_timeout is a 502, after that timeout."""
    await create_provider(client, server)
    server.stall = True
    response = await client.post("/providers/postgres/resources", json={})
    assert response.status == 502
    assert (await response.json())["message"] == (
        f"resource provider did not answer POST {server.url} within 1s"
    )
    assert await events_of(client, object_types="resource") == []


async def test_a_provider_answer_sent_in_pieces_is_read_whole(
    client: TestClient, server: ProviderServer
):
    """A resource streamed in several packets is read to its end before it is decoded."""
    await create_provider(client, server)
    server.answer_chunks = [b'{"id": "/databases/stre', b'amed", "env": {"A": "1"}}']
    resource = await provision(client, "postgres")
    assert (resource["external_id"], resource["env"]) == ("/databases/streamed", {"A": "1"})


@pytest.mark.parametrize(
    "chunks, message",
    [
        ([b'{"env": {}}'], "resource provider postgres answered an invalid resource"),
        ([b"x" * 600_000, b"x" * 600_000], "answered more than 1 MiB"),
    ],
)
async def test_an_invalid_or_oversized_provider_answer_is_a_502(
    client: TestClient, server: ProviderServer, chunks: list[bytes], message: str
):
    """An answer without an id, or larger than 1 MiB, is a 502 and nothing is recorded."""
    await create_provider(client, server)
    server.answer_chunks = chunks
    response = await client.post("/providers/postgres/resources", json={})
    assert response.status == 502
    assert message in (await response.json())["message"]
    assert await events_of(client, object_types="resource") == []


async def test_unreachable_provider_is_a_502(client: TestClient):
    """A provider nobody listens for is a 502."""
    await client.post("/providers", json={"name": "gone", "url": "http://127.0.0.1:9/db"})
    response = await client.post("/providers/gone/resources", json={})
    assert response.status == 502
    assert (
        "resource provider unreachable (POST http://127.0.0.1:9/db)"
        in (await response.json())["message"]
    )


class UnavailableLog:
    """A log whose appends fail, as when the database is down."""

    async def append(self, events: object, expected_last_id: int | None = None) -> None:
        raise StoreUnavailableError("connection refused")


async def test_resource_is_deprovisioned_when_the_log_cannot_record_it(
    client: TestClient, server: ProviderServer
):
    """Provisioned but not recorded: the resource is given back to its provider, then a 503."""
    await create_provider(client, server)
    dispatcher = client.app[keys.DISPATCHER]
    log, dispatcher.store = dispatcher.store, UnavailableLog()
    try:
        response = await client.post("/providers/postgres/resources", json={})
    finally:
        dispatcher.store = log
    assert response.status == 503
    assert [c.method for c in server.calls] == ["POST", "DELETE"]
    assert server.deletes() == ["/databases/db1"]
    assert await ok_json(await client.get("/providers/postgres/resources")) == []


async def test_put_resource_registers_it_without_a_provider_call(
    client: TestClient, server: ProviderServer
):
    """PUT records the resource as given (Flynn's recorded exchange), with no outside call."""
    recorded = RECORDED["provider_resource_put"]
    provider = await create_provider(client, server)
    app = await create_app(client, "withdb", id="adcccdb4-b1a4-4209-a03a-762f4e021632")
    body = json.loads(recorded["request"]["body"]) | {"provider": "ignored"}
    path = f"/providers/postgres/resources/{body['id']}"
    resource = await ok_json(await client.put(path, json=body))
    expected = json.loads(recorded["response"]["body"])
    assert resource == expected | {"provider": provider["id"], "created_at": resource["created_at"]}
    assert server.calls == []
    (event,) = await events_of(client, object_types="resource")
    assert (event["app"], event["data"]) == (app["id"], resource)
    response = await client.put(path, json=body)
    assert response.status == 409 and (await response.json())["code"] == "object_exists"


async def test_resources_are_listed_newest_first(client: TestClient, server: ProviderServer):
    """A provider's resources and an app's resources come newest first."""
    await create_provider(client, server)
    await create_app(client, "lister")
    first = await provision(client, "postgres", ["lister"])
    second = await provision(client, "postgres", ["lister"])
    newest_first = [second["id"], first["id"]]
    assert [r["id"] for r in await ok_json(await client.get("/providers/postgres/resources"))] == (
        newest_first
    )
    assert [r["id"] for r in await ok_json(await client.get("/apps/lister/resources"))] == (
        newest_first
    )


async def test_delete_resource_deprovisions_it_and_answers_the_deleted_resource(
    client: TestClient, server: ProviderServer
):
    """DELETE calls the provider with the escaped external id, then records the deletion."""
    await create_provider(client, server)
    await create_app(client, "owner")
    resource = await provision(client, "postgres", ["owner"])
    path = f"/providers/postgres/resources/{resource['id']}"
    assert await ok_json(await client.delete(path)) == resource
    assert server.calls[-1].query == {"id": "/databases/db1"}
    (event,) = await events_of(client, object_types="resource_deletion")
    assert (event["object_id"], event["app"], event["data"]) == (
        resource["id"],
        resource["apps"][0],
        resource,
    )
    assert (await client.get(path)).status == 404
    assert await ok_json(await client.get("/apps/owner/resources")) == []


async def test_delete_resource_with_a_failing_provider_is_502_and_deletes_nothing(
    client: TestClient, server: ProviderServer
):
    """If the provider refuses the DELETE, the resource stays and nothing is recorded."""
    await create_provider(client, server)
    resource = await provision(client, "postgres")
    server.failing_ids.add("/databases/db1")
    path = f"/providers/postgres/resources/{resource['id']}"
    response = await client.delete(path)
    assert response.status == 502
    assert "answered 500 to DELETE" in (await response.json())["message"]
    assert await ok_json(await client.get(path)) == resource
    assert await events_of(client, object_types="resource_deletion") == []


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_resource_is_only_found_under_its_own_provider(
    client: TestClient, server: ProviderServer, method: str
):
    """Another provider's resource, an unknown id or a malformed one is a bare 404."""
    await create_provider(client, server)
    await client.post("/providers", json={"name": "other", "url": "http://127.0.0.1:9/x"})
    resource = await provision(client, "postgres")
    for path in (
        f"/providers/other/resources/{resource['id']}",
        f"/providers/postgres/resources/{MISSING}",
        "/providers/postgres/resources/not-a-uuid",
    ):
        response = await client.request(method, path)
        assert response.status == 404 and await response.read() == b""
    assert [c.method for c in server.calls] == ["POST"]
