"""Every event records its actor: each write route of the URL table, walked with a request id
of its own, leaves events naming the key, the request, the client and its user agent; what
the service decides itself (cascades, the deployer) names its component and its cause."""

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from controller.urls import URLS
from domain.actors import Actor
from domain.codec import actor_of
from domain.keys import bootstrap_name
from eventstore.record import RecordedEvent
from eventstore.store import EventStore
from tests.controller.conftest import AUTH_KEY, DOMAIN
from tests.controller.provider_server import ProviderServer, running_provider

WRITES = {(url.method, url.path) for url in URLS if url.method != "GET"}
ADMIN = bootstrap_name(AUTH_KEY)
AGENT = "tour/1.0"


class Tour:
    """Writes, each with its own X-Request-Id, remembered by route."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.done: dict[tuple[str, str], str] = {}

    async def write(
        self, method: str, route: str, path: str | None = None, body: object = None
    ) -> Any:
        request_id = f"tour-{len(self.done) + 1}-{method.lower()}"
        headers = {"X-Request-Id": request_id, "User-Agent": AGENT}
        response = await self.client.request(method, path or route, json=body, headers=headers)
        assert response.status == 200, (method, path or route, await response.text())
        assert response.headers["X-Request-Id"] == request_id
        self.done[(method, route)] = request_id
        return await response.json() if response.content_type == "application/json" else None


async def ok(response: Any) -> Any:
    assert response.status == 200, await response.text()
    return await response.json()


async def every_write(tour: Tour, provider: ProviderServer) -> None:
    """One call of each write route of the API, in an order that lets each succeed."""
    app = await tour.write("POST", "/apps", body={"name": "tour"})
    await tour.write("POST", "/apps/{app}", "/apps/tour", {"meta": {"a": "1"}})
    await tour.write("POST", "/apps/{app}/meta", "/apps/tour/meta", {"meta": {"a": "2"}})
    artifact = await tour.write("POST", "/artifacts", body={"type": "docker", "uri": "https://e/t"})
    processes = {"web": {"cmd": ["serve"]}}
    body = {"artifact": artifact["id"], "processes": processes, "app_id": app["id"]}
    release = await tour.write("POST", "/releases", body=body)
    spare, target = [await ok(await tour.client.post("/releases", json=body)) for _ in range(2)]
    await tour.write("PUT", "/apps/{app}/release", "/apps/tour/release", {"id": release["id"]})
    formation = f"/apps/tour/formations/{release['id']}"
    scale = {"processes": {"web": 1}}
    await tour.write("PUT", "/apps/{app}/formations/{release}", formation, scale)
    job_id = f"host-{uuid.uuid4()}"
    job = {"id": job_id, "release": release["id"], "state": "up", "type": "web"}
    await tour.write("PUT", "/apps/{app}/jobs/{job}", f"/apps/tour/jobs/{job_id}", job)
    await tour.write("DELETE", "/apps/{app}/jobs/{job}", f"/apps/tour/jobs/{job_id}")
    await tour.write("POST", "/apps/{app}/jobs", "/apps/tour/jobs", {"release": release["id"]})
    spared = f"/apps/tour/formations/{spare['id']}"
    await ok(await tour.client.put(spared, json={"processes": {"web": 0}}))
    await tour.write("DELETE", "/apps/{app}/formations/{release}", spared)
    await tour.write("DELETE", "/apps/{app}/releases/{id}", f"/apps/tour/releases/{spare['id']}")
    await tour.write("POST", "/apps/{app}/deploy", "/apps/tour/deploy", {"id": target["id"]})
    await tour.write("POST", "/providers", body={"name": "pg", "url": provider.url})
    resources = "/providers/pg/resources"
    await tour.write("POST", "/providers/{provider}/resources", resources, {"apps": ["tour"]})
    registered = f"/providers/pg/resources/{uuid.uuid4()}"
    route = "/providers/{provider}/resources/{resource}"
    await tour.write("PUT", route, registered, {"external_id": "x", "apps": ["tour"]})
    await tour.write("DELETE", route, registered)
    new_route = {"type": "http", "domain": f"api.{DOMAIN}", "service": "tour-web"}
    made = await tour.write("POST", "/apps/{app}/routes", "/apps/tour/routes", new_route)
    one = f"/apps/tour/routes/http/{made['id']}"
    await tour.write("PUT", "/apps/{app}/routes/{type}/{id}", one, {**made, "service": "tour-api"})
    await tour.write("DELETE", "/apps/{app}/routes/{type}/{id}", one)
    await tour.write("PUT", "/domain", body={"old_domain": DOMAIN, "domain": "new.test"})
    await tour.write("POST", "/keys", body={"name": "visitor", "scope": "read"})
    await tour.write("DELETE", "/keys/{name}", "/keys/visitor")
    await tour.write("DELETE", "/apps/{app}", "/apps/tour")


async def the_log(store: EventStore) -> list[tuple[RecordedEvent, Actor | None]]:
    return [(record, actor_of(record)) async for record in store.read()]


@pytest.fixture
async def toured(client: TestClient, store: EventStore) -> tuple[Tour, list[Any]]:
    """The tour of every write route, and the log it left (its deployer's steps included)."""
    tour = Tour(client)
    async with running_provider() as provider:
        await every_write(tour, provider)
    async with asyncio.timeout(5):
        while not any(a and a.component == "deployer" for _, a in await the_log(store)):
            await asyncio.sleep(0.02)
    return tour, await the_log(store)


async def test_every_write_route_records_its_actor_and_request_id(toured: tuple[Tour, list[Any]]):
    """Each write route of the URL table appends events that name the key (never its secret),
    the request's X-Request-Id, the client's address and its user agent."""
    tour, log = toured
    assert set(tour.done) == WRITES  # every write route was walked
    for route, request_id in tour.done.items():
        mine = [actor for _, actor in log if actor and actor.request_id == request_id]
        assert mine, f"{route} recorded no event with its request id"
        for actor in mine:
            assert (actor.key, actor.address, actor.user_agent) == (ADMIN, "127.0.0.1", AGENT)
    assert not any(AUTH_KEY in str(actor) for _, actor in log)


async def test_cascades_carry_the_request_and_the_component_that_decided_them(
    toured: tuple[Tour, list[Any]],
):
    """An app deletion's routes, releases and resources, a domain migration's route copies
    and a new app's default route carry the request's actor plus their component."""
    tour, log = toured
    by_request = {tour.done[("DELETE", "/apps/{app}")]: "app_deletion"}
    by_request[tour.done[("PUT", "/domain")]] = "domain_migration"
    by_request[tour.done[("POST", "/apps")]] = "default_route"
    for request_id, component in by_request.items():
        events = [(r, a) for r, a in log if a and a.request_id == request_id]
        own = {r.object_type for r, a in events if a.component is None}
        cascaded = {r.object_type for r, a in events if a.component == component}
        assert own and cascaded, (component, events)
        assert all(a.key == ADMIN for _, a in events)
    deletion = tour.done[("DELETE", "/apps/{app}")]
    cascaded = {r.object_type for r, a in log if a and a.request_id == deletion and a.component}
    assert {"route_deletion", "release_deletion", "resource_deletion"} <= cascaded


async def test_the_deployers_steps_name_the_deployment_and_the_request_behind_it(
    toured: tuple[Tour, list[Any]],
):
    """A deployment's steps are the deployer's, caused by the deployment's creation event and
    correlated with the request that asked for it."""
    tour, log = toured
    deploy = tour.done[("POST", "/apps/{app}/deploy")]
    (created,) = [r for r, a in log if r.type == "DeploymentCreated" and a.request_id == deploy]
    steps = [a for _, a in log if a and a.component == "deployer"]
    assert steps
    for actor in steps:
        assert (actor.causation_id, actor.correlation_id, actor.key) == (created.id, deploy, None)


async def test_the_request_id_is_echoed_and_a_bad_one_replaced(client: TestClient):
    """Every answer carries X-Request-Id: the client's when it is printable ASCII of at most
    128 characters, else one made by the service (401s and 404s too)."""
    fine = await client.get("/apps", headers={"X-Request-Id": "abc-123 ok"})
    assert fine.headers["X-Request-Id"] == "abc-123 ok"
    for bad in ("x" * 129, "tab\there", "é"):
        answer = await client.get("/apps", headers={"X-Request-Id": bad})
        made = answer.headers["X-Request-Id"]
        assert made != bad and made.isascii() and made.isprintable()
    fresh = [(await client.get("/apps")).headers["X-Request-Id"] for _ in range(3)]
    assert len(set(fresh)) == 3
    assert "X-Request-Id" in (await client.get("/nowhere")).headers
    unknown = await client.get("/apps", headers={"Authorization": "Basic Ono="})
    assert unknown.status == 401 and "X-Request-Id" in unknown.headers
