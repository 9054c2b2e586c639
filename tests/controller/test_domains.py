"""PUT /domain: the cluster domain migration, decided and finished in one append."""

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.controller.api import create_app, events_of, flynn_error, ok_json
from tests.controller.conftest import DOMAIN

NEW = "new.test"
TLS = Path(__file__).parents[1] / "fixtures" / "tls"


async def migrate(client: TestClient, old: str, new: str, **body: Any) -> Any:
    return await client.put("/domain", json={"id": "", "old_domain": old, "domain": new, **body})


async def add_route(client: TestClient, app: str, **route: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await ok_json(await client.post(f"/apps/{app}/routes", json=route))
    return answer


def domains_and_paths(routes: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(r.get("domain", ""), r.get("path", ""), r["service"]) for r in routes}


async def test_migration_copies_http_routes_under_the_old_domain_and_keeps_them(
    client: TestClient,
):
    """Each http route under the old domain gets a copy under the new one (path and service
    kept); other routes, tcp routes and copies that already exist are left alone."""
    await create_app(client, "web")
    await add_route(client, "web", type="http", domain=f"web.{DOMAIN}", path="/api/", service="api")
    await add_route(client, "web", type="http", domain="custom.example.com", service="web-web")
    await add_route(client, "web", type="tcp", service="web-tcp")
    await create_app(client, "shop")
    taken = await add_route(client, "shop", type="http", domain=f"shop.{NEW}", service="mine")

    migration = await ok_json(await migrate(client, DOMAIN, NEW))

    assert list(migration) == ["id", "old_domain", "domain", "created_at", "finished_at"]
    assert (migration["old_domain"], migration["domain"]) == (DOMAIN, NEW)
    web_routes = await ok_json(await client.get("/apps/web/routes"))
    assert domains_and_paths(web_routes) == {
        (f"web.{DOMAIN}", "/", "web-web"),
        (f"web.{DOMAIN}", "/api/", "api"),
        (f"web.{NEW}", "/", "web-web"),
        (f"web.{NEW}", "/api/", "api"),
        ("custom.example.com", "/", "web-web"),
        ("", "", "web-tcp"),
    }
    shop_routes = await ok_json(await client.get("/apps/shop/routes"))
    assert [r for r in shop_routes if r["domain"] == f"shop.{NEW}"] == [taken]


async def test_migration_records_start_copies_and_finish_in_one_append(client: TestClient):
    """Two `domain_migration` events (the second with finished_at) bracket the route copies."""
    await create_app(client, "bracket")
    migration = await ok_json(await migrate(client, DOMAIN, NEW))
    events = list(reversed(await events_of(client)))
    kinds = [e["object_type"] for e in events]
    assert kinds[-3:] == ["domain_migration", "route", "domain_migration"]
    started, copy, finished = events[-3:]
    assert finished["data"] == {"domain_migration": migration}
    assert started["data"] == {
        "domain_migration": {k: v for k, v in migration.items() if k != "finished_at"}
    }
    assert started["object_id"] == finished["object_id"] == migration["id"]
    assert "app" not in started and "app" not in finished
    assert copy["data"]["domain"] == f"bracket.{NEW}"
    assert started["created_at"] == finished["created_at"]  # one atomic append


async def test_migrating_from_another_domain_is_a_400(client: TestClient):
    """old_domain must be the current domain (Flynn's message), and nothing is recorded."""
    response = await migrate(client, "elsewhere.test", NEW)
    assert response.status == 400
    assert await response.json() == flynn_error(
        "validation_error", f'Can\'t migrate from "elsewhere.test" when currently using "{DOMAIN}"'
    )
    assert await events_of(client, object_types="domain_migration") == []


async def test_after_a_migration_the_new_domain_is_current(client: TestClient):
    """New apps get routes under the new domain, and only it can be migrated from."""
    await ok_json(await migrate(client, DOMAIN, NEW))
    await create_app(client, "later")
    (route,) = await ok_json(await client.get("/apps/later/routes"))
    assert route["domain"] == f"later.{NEW}"
    response = await migrate(client, DOMAIN, "third.test")
    assert (await response.json())["message"] == (
        f'Can\'t migrate from "{DOMAIN}" when currently using "{NEW}"'
    )
    again = await ok_json(await migrate(client, NEW, "third.test"))
    assert again["old_domain"] == NEW


async def test_routes_with_the_old_default_certificate_get_the_new_one(client: TestClient):
    """The router's TLSCERT becomes old_tls_cert; a route using it is copied with tls_cert."""
    cert, key = (TLS / "example.com.crt").read_text(), (TLS / "example.com.key").read_text()
    router = await create_app(client, "router", meta={"flynn-system-app": "true"})
    release = await ok_json(
        await client.post("/releases", json={"env": {"TLSCERT": cert, "TLSKEY": key}})
    )
    await ok_json(await client.put(f"/apps/{router['id']}/release", json={"id": release["id"]}))
    await create_app(client, "secure")
    route = {"type": "http", "service": "s", "tls_cert": cert, "tls_key": key}
    await add_route(client, "secure", **route, domain=f"own.{DOMAIN}")
    new_cert = {"ca_cert": "CA", "cert": "NEW-CERT", "pin": "PIN", "key": "NEW-KEY"}

    migration = await ok_json(await migrate(client, DOMAIN, NEW, tls_cert=new_cert))

    assert migration["old_tls_cert"] == {"ca_cert": "", "cert": cert, "pin": "", "key": key}
    assert migration["tls_cert"] == new_cert
    routes = await ok_json(await client.get("/apps/secure/routes"))
    copies = {r["domain"]: r for r in routes if r["domain"].endswith(NEW)}
    assert (copies[f"own.{NEW}"]["tls_cert"], copies[f"own.{NEW}"]["tls_key"]) == (
        "NEW-CERT",
        "NEW-KEY",
    )
    assert "tls_cert" not in copies[f"secure.{NEW}"]


async def test_migration_needs_old_domain_and_domain(client: TestClient):
    """A body without `domain` is a 400 validation_error."""
    response = await client.put("/domain", json={"old_domain": DOMAIN})
    assert response.status == 400
    assert (await response.json())["code"] == "validation_error"
