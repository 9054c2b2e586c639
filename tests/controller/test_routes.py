"""An app's routes over HTTP: Flynn's shapes, conflicts, tcp ports, path rules and TLS pairs."""

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.controller.api import create_app, events_of, flynn_error, ok_json
from tests.controller.conftest import DOMAIN

FIXTURES = Path(__file__).parents[1] / "fixtures"
RECORDED = json.loads((FIXTURES / "flynn" / "controller.json").read_text())
TLS_FILES = {
    "cert": "example.com.crt",
    "key": "example.com.key",
    "other": "other.key",
    "encrypted": "example.com.encrypted.key",
}
TLS = {short: (FIXTURES / "tls" / name).read_text() for short, name in TLS_FILES.items()}
APP_ID = "adcccdb4-b1a4-4209-a03a-762f4e021632"
MISSING = "00000000-0000-4000-8000-000000000000"


async def add(client: TestClient, app: str, **route: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await ok_json(await client.post(f"/apps/{app}/routes", json=route))
    return answer


async def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_create_route_answers_flynns_route_and_records_a_route_event(client: TestClient):
    """The CLI's body (zero created_at) gives the recorded route, path "/" filled in."""
    await create_app(client, "my-app", id=APP_ID)
    recorded = RECORDED["route_create"]
    response = await client.post(
        f"/apps/{APP_ID}/routes",
        data=recorded["request"]["body"],
        headers={"Content-Type": "application/json"},
    )
    route = await ok_json(response)
    expected = json.loads(recorded["response"]["body"])
    times = {
        "id": route["id"],
        "created_at": route["created_at"],
        "updated_at": route["updated_at"],
    }
    assert route == expected | times | {"path": "/"}
    assert route["created_at"] == route["updated_at"] != "0001-01-01T00:00:00Z"
    (event, _default) = await events_of(client, object_types="route")
    assert (event["object_id"], event["app"], event["data"]) == (route["id"], APP_ID, route)


async def test_routes_are_listed_newest_first_and_fetched_by_type_and_id(client: TestClient):
    """GET lists the app's routes newest first; one is fetched at /routes/<type>/<id>."""
    await create_app(client, "lister")
    first = await add(client, "lister", type="http", domain="a.example.com", service="s")
    second = await add(client, "lister", type="tcp", service="s")
    listed = await ok_json(await client.get("/apps/lister/routes"))
    assert [r["id"] for r in listed[:2]] == [second["id"], first["id"]]
    assert listed[2]["domain"] == f"lister.{DOMAIN}"  # the default route, oldest
    assert await ok_json(await client.get(f"/apps/lister/routes/tcp/{second['id']}")) == second


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_a_route_is_only_found_under_its_own_app_and_type(client: TestClient, method: str):
    """Another app's route, a wrong type, an unknown or malformed id: a bare 404."""
    await create_app(client, "owner")
    await create_app(client, "stranger")
    route = await add(client, "owner", type="http", domain="o.example.com", service="s")
    body = {"type": "http", "domain": "o.example.com", "service": "x"}
    for path in (
        f"/apps/stranger/routes/http/{route['id']}",
        f"/apps/owner/routes/tcp/{route['id']}",
        f"/apps/owner/routes/ftp/{route['id']}",
        f"/apps/owner/routes/http/{MISSING}",
        "/apps/owner/routes/http/not-a-uuid",
    ):
        response = await client.request(method, path, json=body)
        assert response.status == 404 and await response.read() == b"", path
    assert await ok_json(await client.get(f"/apps/owner/routes/http/{route['id']}")) == route


async def test_duplicate_http_route_is_a_409_conflict_with_the_existing_route(client: TestClient):
    """Another route on the same domain and path: Flynn's "Duplicate route" with it as detail."""
    await create_app(client, "one")
    await create_app(client, "two")
    existing = await add(client, "one", type="http", domain="dup.example.com", service="s")
    response = await client.post(
        "/apps/two/routes",
        json={"type": "http", "domain": "dup.example.com", "path": "", "service": "t"},
    )
    assert await error(response, 409) == {
        "code": "conflict",
        "message": "Duplicate route",
        "detail": existing,
        "retry": False,
    }


async def test_paths_are_normalized_and_need_a_root_route(client: TestClient):
    """ "" is "/", a trailing "/" is added, a path must start with "/" and needs a "/" route."""
    await create_app(client, "paths")
    route = {"type": "http", "domain": "p.example.com", "service": "s"}
    response = await client.post("/apps/paths/routes", json=route | {"path": "/api"})
    assert (await error(response, 400))["message"] == (
        "path is not allowed as there is no route at the default path"
    )
    assert (await add(client, "paths", **route, path=""))["path"] == "/"
    assert (await add(client, "paths", **route, path="/api"))["path"] == "/api/"
    assert (await add(client, "paths", **route, path="/v1/docs/"))["path"] == "/v1/docs/"
    response = await client.post("/apps/paths/routes", json=route | {"path": "api/"})
    assert (await error(response, 400))["message"] == "path must start with a forward slash"


@pytest.mark.parametrize(
    "route, message",
    [
        ({"type": "http", "service": "s"}, "domain must be set"),
        ({"type": "http", "domain": "x.example.com"}, "service must be set"),
        ({"type": "tcp", "service": ""}, "service must be set"),
        (
            {"type": "http", "domain": "x.example.com", "service": "s", "port": 8080},
            "port must have the default value of zero",
        ),
        (
            {"type": "udp", "service": "s"},
            "type Enum error. The data must be equal to one of these values [http tcp].",
        ),
        (
            {"type": "http", "domain": "x.example.com", "service": "s", "colour": "red"},
            'Additional properties aren\'t allowed, found "colour" as one of its keys',
        ),
    ],
)
async def test_invalid_routes_are_400_validation_errors(
    client: TestClient, route: dict, message: str
):
    """A missing domain or service, a port on an http route or an unknown key is a 400."""
    await create_app(client, "strict")
    body = await error(await client.post("/apps/strict/routes", json=route), 400)
    assert (body["code"], body["message"]) == ("validation_error", message)
    assert len(await events_of(client, object_types="route")) == 1  # the default route


async def test_tcp_ports_are_allocated_from_3000_reserved_refused_and_reused(client: TestClient):
    """Port 0 takes the first free port of 3000-3500, 80/443 are refused, a freed port is reused."""
    await create_app(client, "tcp")
    first = await add(client, "tcp", type="tcp", service="s")
    second = await add(client, "tcp", type="tcp", service="s", port=0)
    assert (first["port"], second["port"]) == (3000, 3001)
    for port in (80, 443):
        response = await client.post(
            "/apps/tcp/routes", json={"type": "tcp", "service": "s", "port": port}
        )
        assert await error(response, 409) == flynn_error(
            "conflict", "Port reserved for HTTP/HTTPS traffic"
        )
    response = await client.post(
        "/apps/tcp/routes", json={"type": "tcp", "service": "s", "port": 3001}
    )
    assert (await error(response, 409))["detail"] == second
    assert (await add(client, "tcp", type="tcp", service="s", port=4000))["port"] == 4000
    assert (await client.delete(f"/apps/tcp/routes/tcp/{first['id']}")).status == 200
    assert (await add(client, "tcp", type="tcp", service="s"))["port"] == 3000  # Flynn: 3002


async def test_a_matching_tls_pair_is_kept_on_the_route(client: TestClient):
    """A PEM certificate with its key is stored; HEAD's certificate object is accepted too."""
    await create_app(client, "tls")
    cert, key = TLS["cert"], TLS["key"]
    legacy = await add(
        client,
        "tls",
        type="http",
        domain="example.com",
        service="s",
        tls_cert=cert + "\n\n",
        tls_key=key,
    )
    assert (legacy["tls_cert"], legacy["tls_key"]) == (cert.strip(), key.strip())
    head = await add(
        client,
        "tls",
        type="http",
        domain="www.example.com",
        service="s",
        certificate={"cert": cert, "key": key},
    )
    assert head["tls_cert"] == cert.strip() and "certificate" not in head


@pytest.mark.parametrize(
    "cert, key, reason",
    [
        ("cert", "other", "tls_key does not match tls_cert"),
        ("key", "key", "tls_cert is not PEM"),
        ("cert", "cert", "tls_key is not a PEM private key"),
        ("cert", "encrypted", "tls_key is encrypted"),
        ("cert", None, "tls_cert and tls_key go together"),
    ],
)
async def test_an_invalid_tls_pair_is_a_400(
    client: TestClient, cert: str, key: str | None, reason: str
):
    """A certificate that is not PEM, a key that does not match or is missing: 400."""
    await create_app(client, "badtls")
    body: dict[str, str | None] = {"type": "http", "domain": "example.com", "service": "s"}
    body |= {"tls_cert": TLS[cert], "tls_key": TLS[key] if key else None}
    response = await client.post("/apps/badtls/routes", json=body)
    assert await error(response, 400) == flynn_error(
        "validation_error", f"Certificate invalid: {reason}"
    )


async def test_update_route_replaces_its_fields_and_keeps_domain_and_parent(client: TestClient):
    """PUT (the CLI's recorded body) replaces service and sticky, bumps updated_at, keeps
    created_at and parent_ref even when the body omits it, and records a route event."""
    await create_app(client, "my-app", id=APP_ID)
    route = await add(client, APP_ID, type="http", domain="http://example.com", service="my-web")
    body = json.loads(RECORDED["route_update"]["request"]["body"]) | {"id": route["id"]}
    del body["parent_ref"]
    updated = await ok_json(
        await client.put(f"/apps/{APP_ID}/routes/http/{route['id']}", json=body)
    )
    assert updated == route | {
        "service": "my-app-1450232456657062340-other",
        "sticky": True,
        "updated_at": updated["updated_at"],
    }
    assert updated["updated_at"] > route["updated_at"]
    (event, *_) = await events_of(client, object_types="route")
    assert (event["object_id"], event["app"], event["data"]) == (route["id"], APP_ID, updated)


async def test_update_route_refuses_a_new_domain_and_a_taken_path(client: TestClient):
    """The domain cannot change (400); moving onto a taken (domain, path) is a 409."""
    await create_app(client, "mover")
    root = await add(client, "mover", type="http", domain="m.example.com", service="s")
    api = await add(client, "mover", type="http", domain="m.example.com", service="s", path="/api/")
    path = f"/apps/mover/routes/http/{api['id']}"
    moved = {"type": "http", "domain": "n.example.com", "service": "s", "path": "/api/"}
    assert (await error(await client.put(path, json=moved), 400))["message"] == (
        "domain cannot be changed"
    )
    onto_root = moved | {"domain": "m.example.com", "path": "/"}
    assert (await error(await client.put(path, json=onto_root), 409))["detail"] == root


async def test_update_tcp_route_keeps_its_port_unless_given_a_free_one(client: TestClient):
    """Port 0 keeps the route's port; a taken port is a 409; a free one is taken."""
    await create_app(client, "tcpmove")
    first = await add(client, "tcpmove", type="tcp", service="s")
    second = await add(client, "tcpmove", type="tcp", service="s")
    path = f"/apps/tcpmove/routes/tcp/{second['id']}"
    assert (await ok_json(await client.put(path, json={"type": "tcp", "service": "t"})))[
        "port"
    ] == 3001
    taken = {"type": "tcp", "service": "t", "port": first["port"]}
    assert (await error(await client.put(path, json=taken), 409))["message"] == "Duplicate route"
    moved = await ok_json(
        await client.put(path, json={"type": "tcp", "service": "t", "port": 3100})
    )
    assert moved["port"] == 3100


async def test_delete_route_answers_empty_and_records_a_route_deletion(client: TestClient):
    """DELETE answers an empty 200 and records `route_deletion` with the route as data."""
    await create_app(client, "deleter")
    route = await add(client, "deleter", type="http", domain="d.example.com", service="s")
    response = await client.delete(f"/apps/deleter/routes/http/{route['id']}")
    assert response.status == 200 and await response.read() == b""
    (event,) = await events_of(client, object_types="route_deletion")
    assert (event["object_id"], event["data"]) == (route["id"], route)
    assert (await client.get(f"/apps/deleter/routes/http/{route['id']}")).status == 404


async def test_a_root_route_with_path_routes_cannot_be_deleted(client: TestClient):
    """Deleting "/" while path routes use its domain is a 400, until they are gone."""
    await create_app(client, "rooted")
    root = await add(client, "rooted", type="http", domain="r.example.com", service="s")
    api = await add(client, "rooted", type="http", domain="r.example.com", service="s", path="/api")
    response = await client.delete(f"/apps/rooted/routes/http/{root['id']}")
    assert (await error(response, 400))["message"] == "Route has dependent routes"
    assert (await client.delete(f"/apps/rooted/routes/http/{api['id']}")).status == 200
    assert (await client.delete(f"/apps/rooted/routes/http/{root['id']}")).status == 200
