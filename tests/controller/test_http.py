"""Cross-cutting HTTP behaviour: authentication, CORS, status, errors for unknown routes."""

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from service.settings import Settings


def basic(password: str, user: str = "") -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("wrong"),
        basic(""),
        {"Authorization": "Bearer test-key"},
        {"Authorization": "Basic !!"},
    ],
)
async def test_requests_without_a_valid_key_get_an_empty_401(anonymous: TestClient, headers: dict):
    """A missing, wrong or malformed credential is 401 with an empty body and no challenge."""
    response = await anonymous.get("/apps", headers=headers)
    assert response.status == 401
    assert await response.read() == b""
    assert "WWW-Authenticate" not in response.headers


async def test_any_user_name_and_any_configured_key_are_accepted(anonymous: TestClient):
    """The user name is ignored, and every key of AUTH_KEY works (rotation)."""
    for headers in (basic("test-key", "alice"), basic("second-key")):
        assert (await anonymous.get("/apps", headers=headers)).status == 200


async def test_key_query_parameter_only_for_streams_and_backup(anonymous: TestClient):
    """?key= authenticates an event stream request, not a plain API call."""
    assert (await anonymous.get("/apps", params={"key": "test-key"})).status == 401
    response = await anonymous.get(
        "/events", params={"key": "test-key"}, headers={"Accept": "text/event-stream"}
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    response.close()


async def test_ping_needs_no_key_and_status_does(anonymous: TestClient, client: TestClient):
    """/ping is open; /.well-known/status needs a key and reports healthy with a seed version."""
    assert (await anonymous.get("/ping")).status == 200
    assert (await anonymous.get("/.well-known/status")).status == 401
    response = await client.get("/.well-known/status")
    assert response.status == 200
    body = await response.json()
    assert body["data"]["status"] == "healthy" and body["data"]["version"] == "v20151214.0"


async def test_ca_cert_without_a_password_is_open_but_a_wrong_one_is_refused(aiohttp_client, store):
    """GET /ca-cert serves CA_CERT to anyone without credentials, and refuses a wrong key."""
    from controller.app import create_app

    settings = Settings(auth_keys=("k",), ca_cert="-----BEGIN CERTIFICATE-----\nMII\n")
    client = await aiohttp_client(create_app(settings, store=store))
    response = await client.get("/ca-cert")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert (await response.text()).startswith("-----BEGIN CERTIFICATE-----")
    assert (await client.get("/ca-cert", headers=basic("bad"))).status == 401


async def test_cors_preflight_and_headers(anonymous: TestClient, client: TestClient):
    """A preflight is answered without a key; responses to a browser carry CORS headers,
    by default for any origin and without credentials (see tests/reliability/test_cors.py)."""
    response = await anonymous.options("/apps", headers={"Origin": "https://dash.example"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    response = await client.get("/apps", headers={"Origin": "https://dash.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Disposition" in response.headers["Access-Control-Expose-Headers"]


async def test_unknown_paths_and_methods_answer_like_flynns_router(client: TestClient):
    """An unknown path is a text 404; a known path with a wrong method is a 405 with Allow."""
    response = await client.get("/nothing/here")
    assert response.status == 404 and await response.text() == "404 page not found"
    response = await client.patch("/apps")
    assert response.status == 405 and "GET" in response.headers["Allow"]


async def test_oversized_bodies_are_413_with_an_error_document(aiohttp_client, store):
    """A body over MAX_BODY_SIZE is refused with 413 and Flynn's error shape."""
    from controller.app import create_app

    client = await aiohttp_client(
        create_app(Settings(auth_keys=("k",), max_body_size=1024), store=store)
    )
    headers = basic("k") | {"Content-Type": "application/json"}
    response = await client.post("/apps", data=b"{" + b" " * 2048 + b"}", headers=headers)
    assert response.status == 413
    body = await response.json()
    assert body["code"] == "request_body_too_big" and body["retry"] is False
