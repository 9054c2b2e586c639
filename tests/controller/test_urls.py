"""The URL table drives the edge: a row decides who may call its route, which schema its
body must meet, whether it may hold a stream slot, and whether the service starts at all."""

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from controller import keys, urls
from controller.app import create_app
from controller.endpoints import Access, Endpoint
from controller.http import json_response, read_json
from controller.limits import STREAM_SLOTS, claim_stream_slot
from controller.validation import load_validators
from eventstore.memory import InMemoryEventStore
from service.settings import Settings

KEY = "urls-key"
AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY)}


async def echo(request: web.Request) -> web.Response:
    return json_response(b'"ok"')


async def echo_body(request: web.Request) -> web.Response:
    doc = await read_json(request)
    return json_response(str(sorted(doc)).encode().replace(b"'", b'"'))


async def stream_then_fail(request: web.Request) -> web.StreamResponse:
    claim_stream_slot(request)
    if request.query.get("fail") == "true":
        raise RuntimeError("the source failed")
    return json_response(b'"streamed"')


async def claim_without_streaming(request: web.Request) -> web.Response:
    claim_stream_slot(request)
    return json_response(b'"held"')


EXTRA = (
    Endpoint("GET", "/test/open", echo, "open", access=Access.OPEN),
    Endpoint("GET", "/test/param", echo, "?key= too", access=Access.KEY_OR_PARAM),
    Endpoint("GET", "/test/keyed", echo, "the key only"),
    Endpoint("POST", "/test/provider", echo_body, "a provider's body", body="provider"),
    Endpoint("GET", "/test/stream", stream_then_fail, "streams", answers=("stream",)),
    Endpoint("GET", "/test/plain", claim_without_streaming, "streams not"),
)


@pytest.fixture
async def client(aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The service with six rows of its own added to the URL table."""
    monkeypatch.setattr(urls, "URLS", urls.URLS + EXTRA)
    app = create_app(Settings(auth_keys=(KEY,)), store=InMemoryEventStore())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def test_a_rows_access_decides_who_may_call_its_route(client: TestClient):
    """An open row answers anyone; a KEY_OR_PARAM row takes ?key=; a plain row wants the
    key as the password, whatever the path looks like."""
    assert (await client.get("/test/open")).status == 200
    assert (await client.get("/test/param")).status == 401
    assert (await client.get(f"/test/param?key={KEY}")).status == 200
    assert (await client.get("/test/param?key=wrong")).status == 401
    assert (await client.get(f"/test/keyed?key={KEY}")).status == 401
    assert (await client.get("/test/keyed", headers=AUTH)).status == 200


async def test_open_rows_carry_no_log_position_and_keyed_ones_do(client: TestClient):
    """Only answers to requests that went through the catch-up name a log position."""
    assert "Evenflow-Event-Id" not in (await client.get("/test/open")).headers
    assert (await client.get("/test/keyed", headers=AUTH)).headers["Evenflow-Event-Id"] == "0"


async def test_read_json_checks_a_body_against_the_schema_its_row_names(client: TestClient):
    """The handler names no schema: its row's (provider: name and url required) decides."""
    headers = AUTH | {"Content-Type": "application/json"}
    good = {"name": "p", "url": "http://p.example/"}
    answer = await client.post("/test/provider", json=good, headers=headers)
    assert answer.status == 200 and await answer.json() == ["name", "url"]
    answer = await client.post("/test/provider", json={"name": "p"}, headers=headers)
    assert answer.status == 400
    assert (await answer.json())["code"] == "validation_error"


@pytest.mark.parametrize("fail", ["false", "true"])
async def test_a_stream_slot_is_given_back_however_the_handler_ends(
    client: TestClient,
    fail: str,
):
    """A streaming row's slot is free again once its handler returned or raised."""
    response = await client.get(f"/test/stream?fail={fail}", headers=AUTH)
    assert response.status == (500 if fail == "true" else 200)
    assert client.app[STREAM_SLOTS].holders == {}


async def test_only_a_row_that_streams_may_take_a_stream_slot(client: TestClient):
    """A handler of a row that does not stream cannot hold a slot (it would never be given
    back): its request fails, and no slot stays taken."""
    response = await client.get("/test/plain", headers=AUTH)
    assert response.status == 500 and (await response.json())["code"] == "unknown_error"
    assert client.app[STREAM_SLOTS].holders == {}


def test_a_row_naming_a_schema_that_does_not_exist_stops_the_start_up():
    """A typo in a row's body schema is found when the app is built, not by a client."""
    app = web.Application()
    app[keys.SCHEMAS] = load_validators()
    with pytest.raises(ValueError, match=r"schemas/no_such_schema\.json"):
        urls.setup_routes(app, [Endpoint("POST", "/x", echo, "x", body="no_such_schema")])


def test_the_table_keeps_flynns_route_order_and_one_row_per_route():
    """Rows are unique by method and path, and the first ones are Flynn's status routes,
    then apps, in controller.go's order."""
    pairs = [(url.method, url.path) for url in urls.URLS]
    assert len(pairs) == len(set(pairs))
    assert pairs[:5] == [
        ("GET", "/ping"),
        ("GET", "/.well-known/status"),
        ("GET", "/ca-cert"),
        ("GET", "/openapi.json"),
        ("POST", "/apps"),
    ]
