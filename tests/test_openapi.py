"""GET /openapi.json: a valid OpenAPI 3.1 document of every route the service answers, built
from the URL table, with the body schemas of schemas/ and who may call each route."""

import json
from importlib import resources
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from controller.app import create_app
from controller.openapi import build_document
from controller.urls import URLS
from eventstore.memory import InMemoryEventStore
from service.settings import Settings

KEY = "openapi-key"


@pytest.fixture
def app() -> Any:
    return create_app(Settings(auth_keys=(KEY,)), store=InMemoryEventStore())


@pytest.fixture
def doc() -> Any:
    return json.loads(json.dumps(build_document(URLS)))


def operations(doc: Any) -> list[tuple[str, str, Any]]:
    return [
        (method.upper(), path, operation)
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_route_the_router_answers_is_documented_and_nothing_else(app: Any, doc: Any):
    """The document names exactly the router's routes (HEAD twins of GETs aside): no route
    is added beside the URL table."""
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info()
        served.add((route.method, info.get("path") or info["formatter"]))
    documented = {(method, path) for method, path, _ in operations(doc)}
    heads = {("HEAD", path) for method, path in documented if method == "GET"}
    assert served == documented | heads
    assert len(documented) == len(URLS) > 50


def test_the_document_is_valid_openapi_3_1_and_its_references_resolve(doc: Any):
    """The document validates against the OpenAPI 3.1 schema, and every $ref points at a
    component that exists."""
    OPENAPI_31_VALIDATOR.validate(doc)
    components = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs and all(ref.removeprefix("#/components/schemas/") in components for ref in refs)


def test_only_posts_and_puts_take_a_body_each_a_file_of_schemas(doc: Any):
    """Each POST and PUT documents a JSON body whose schema is a file of schemas/ (and may
    answer 400 and 413); no other method takes one."""
    names = {e.name.removesuffix(".json") for e in resources.files("schemas").iterdir()}
    bodies = 0
    for method, path, operation in operations(doc):
        body = operation.get("requestBody")
        assert (body is not None) == (method in ("POST", "PUT")), (method, path)
        if body is not None:
            ref = body["content"]["application/json"]["schema"]["$ref"]
            assert ref.removeprefix("#/components/schemas/") in names, (method, path)
            assert {"400", "413"} <= operation["responses"].keys()
            bodies += 1
    assert bodies >= 15


def test_body_schemas_are_the_files_of_schemas(doc: Any):
    """A component is its schemas/ file, definitions moved to components of their own."""
    components = doc["components"]["schemas"]
    release = json.loads(resources.files("schemas").joinpath("release.json").read_text())
    assert components["release"]["properties"].keys() == release["properties"].keys()
    assert components["release"]["properties"]["env"] == {
        "$ref": "#/components/schemas/release.env"
    }
    assert components["release.env"] == release["definitions"]["env"]
    assert "$schema" not in components["release"] and "definitions" not in components["release"]


def test_only_ping_ca_cert_and_the_dashboards_sign_in_are_documented_without_a_key(doc: Any):
    """The document requires the key everywhere but /ping, /ca-cert and the dashboard's
    page, files and sign-in, which alone carry no log position either."""
    assert doc["security"] == [{"key": []}]
    exempt = set()
    for _, path, operation in operations(doc):
        if {} in operation.get("security", [{"key": []}]):
            exempt.add(path)
            assert "Evenflow-Event-Id" not in operation["responses"]["200"].get("headers", {})
        else:
            assert "Evenflow-Event-Id" in operation["responses"]["200"]["headers"], path
    assert exempt == {"/ping", "/ca-cert", "/", "/dashboard/static/{name}", "/dashboard/session"}


def test_the_key_parameter_is_documented_on_the_streams_and_the_backup_only(doc: Any):
    """?key= is a documented way in on GET /events, /formations, /apps/{app}/log and
    /backup, and on nothing else."""
    assert doc["components"]["securitySchemes"]["key_param"]["in"] == "query"
    with_param = {
        (method, path)
        for method, path, operation in operations(doc)
        if {"key_param": []} in operation.get("security", [])
    }
    assert with_param == {
        ("GET", "/events"),
        ("GET", "/formations"),
        ("GET", "/apps/{app}/log"),
        ("GET", "/backup"),
    }


def test_every_write_documents_the_idempotency_key(doc: Any):
    """POST, PUT and DELETE operations take Idempotency-Key; reads do not."""
    for method, path, operation in operations(doc):
        names = {p["name"] for p in operation.get("parameters", [])}
        assert ("Idempotency-Key" in names) == (method != "GET"), (method, path)


async def test_the_document_is_served_to_key_holders_only(aiohttp_client: Any, app: Any, doc: Any):
    """GET /openapi.json answers the document with the key, and a bare 401 without it."""
    client: TestClient = await aiohttp_client(app)
    assert (await client.get("/openapi.json")).status == 401
    response = await client.get(
        "/openapi.json", headers={"Authorization": aiohttp.encode_basic_auth("", KEY)}
    )
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == doc


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []
