"""App deletion and resources: exclusive ones are deprovisioned, and a provider failing
halfway leaves a state that a retry finishes (Flynn re-deprovisions and leaks routes)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from controller import keys
from eventstore.store import StoreUnavailableError
from tests.controller.api import create_app, create_provider, events_of, ok_json, provision
from tests.controller.provider_server import ProviderServer, running_provider


@pytest.fixture
async def server() -> AsyncIterator[ProviderServer]:
    async with running_provider() as provider_server:
        yield provider_server


async def status_of(client: TestClient, path: str) -> int:
    return (await client.get(path)).status


async def test_app_deletion_deprovisions_its_own_resources_and_keeps_shared_ones(
    client: TestClient, server: ProviderServer
):
    """Resources only the app used are deprovisioned and deleted; shared ones lose the app."""
    await create_provider(client, server)
    app, other = await create_app(client, "gone"), await create_app(client, "stays")
    own = await provision(client, "postgres", ["gone"])
    shared = await provision(client, "postgres", ["gone", "stays"])
    assert (await client.delete("/apps/gone")).status == 200
    assert server.deletes() == ["/databases/db1"]
    assert await status_of(client, f"/providers/postgres/resources/{own['id']}") == 404
    kept = await ok_json(await client.get(f"/providers/postgres/resources/{shared['id']}"))
    assert kept["apps"] == [other["id"]]
    (deletion,) = await events_of(client, object_types="app_deletion")
    assert [r["id"] for r in deletion["data"]["app_deletion"]["deleted_resources"]] == [own["id"]]
    (resource_deletion,) = await events_of(client, object_types="resource_deletion")
    assert (resource_deletion["object_id"], resource_deletion["app"]) == (own["id"], app["id"])


async def test_app_deletion_stopped_by_a_provider_records_what_it_did_and_a_retry_finishes(
    client: TestClient, server: ProviderServer
):
    """Resource 2 of 3 failing: resource 1 is recorded as deleted, the app and the rest stay
    (502); once the provider recovers, the same DELETE finishes without asking twice for 1."""
    await create_provider(client, server)
    app = await create_app(client, "halfway")
    first, second, third = [await provision(client, "postgres", ["halfway"]) for _ in range(3)]
    server.failing_ids.add(second["external_id"])

    response = await client.delete("/apps/halfway")
    assert response.status == 502
    body = await response.json()
    assert body["code"] == "unknown_error" and body["retry"] is True
    assert "(1 of 3 resources deprovisioned and deleted; retry" in body["message"]
    assert "answered 500 to DELETE" in body["message"]
    assert await status_of(client, "/apps/halfway") == 200
    assert await status_of(client, "/apps/halfway/routes") == 200
    remaining = await ok_json(await client.get("/apps/halfway/resources"))
    assert sorted(r["id"] for r in remaining) == sorted([second["id"], third["id"]])
    (deleted,) = await events_of(client, object_types="resource_deletion")
    assert (deleted["object_id"], deleted["app"]) == (first["id"], app["id"])
    assert await events_of(client, object_types="app_deletion") == []

    server.failing_ids.clear()
    assert (await client.delete("/apps/halfway")).status == 200
    assert server.deletes() == [
        "/databases/db1",
        "/databases/db2",
        "/databases/db2",
        "/databases/db3",
    ]
    assert await status_of(client, "/apps/halfway") == 404
    for resource in (first, second, third):
        assert await status_of(client, f"/providers/postgres/resources/{resource['id']}") == 404
    (deletion,) = await events_of(client, object_types="app_deletion")
    deleted_resources = deletion["data"]["app_deletion"]["deleted_resources"]
    assert sorted(r["id"] for r in deleted_resources) == sorted([second["id"], third["id"]])
    assert len(await events_of(client, object_types="resource_deletion")) == 3


class BlinkingLog:
    """The real log, except that its next append fails once, as when the database blinks."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.blinked = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def append(self, events: Any, expected_last_id: int | None = None) -> Any:
        if not self.blinked:
            self.blinked = True
            raise StoreUnavailableError("connection reset")
        return await self.log.append(events, expected_last_id)


async def test_resources_deprovisioned_for_an_app_that_could_not_be_deleted_are_recorded(
    client: TestClient, server: ProviderServer
):
    """If recording the app deletion fails, its deprovisioned resources are still recorded as
    deleted, so that the retry deletes the app without asking the provider again."""
    await create_provider(client, server)
    await create_app(client, "blink")
    resource = await provision(client, "postgres", ["blink"])
    dispatcher = client.app[keys.DISPATCHER]
    log, dispatcher.store = dispatcher.store, BlinkingLog(dispatcher.store)
    try:
        response = await client.delete("/apps/blink")
    finally:
        dispatcher.store = log
    assert response.status == 503
    assert await status_of(client, "/apps/blink") == 200
    assert await status_of(client, f"/providers/postgres/resources/{resource['id']}") == 404
    assert (await client.delete("/apps/blink")).status == 200
    assert server.deletes() == ["/databases/db1"]
