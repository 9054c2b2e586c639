"""GET /openapi.json: a valid OpenAPI 3.1 document of every route, with the body schemas of
schemas/, that follows the route table (a route without an entry in OPERATIONS fails here)."""

import json
from importlib import resources
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from controller.app import create_app
from controller.openapi import OPEN_PATHS, OPERATIONS, build_document, routes
from eventstore.memory import InMemoryEventStore
from service.settings import Settings

KEY = "openapi-key"


@pytest.fixture
def app() -> Any:
    return create_app(Settings(auth_keys=(KEY,)), store=InMemoryEventStore())


def test_every_route_has_an_entry_in_the_operations_table(app: Any):
    """Adding a route without describing it in controller/openapi.py OPERATIONS fails here."""
    table = set(routes(app.router))
    assert table - set(OPERATIONS) == set(), "routes missing from openapi.OPERATIONS"
    assert set(OPERATIONS) - table == set(), "OPERATIONS entries for routes that do not exist"


def test_every_post_and_put_names_a_body_schema_that_exists(app: Any):
    """Each body endpoint's schema is a file of schemas/, and only POST and PUT have bodies."""
    names = {e.name.removesuffix(".json") for e in resources.files("schemas").iterdir()}
    for (method, path), operation in OPERATIONS.items():
        assert (operation.body is not None) == (method in ("POST", "PUT")), (method, path)
        assert operation.body is None or operation.body in names


def test_the_document_is_valid_openapi_3_1_and_its_references_resolve(app: Any):
    """The document validates against the OpenAPI 3.1 schema, and every $ref points at a
    component that exists."""
    doc = json.loads(json.dumps(build_document(app.router)))
    OPENAPI_31_VALIDATOR.validate(doc)
    components = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs and all(ref.removeprefix("#/components/schemas/") in components for ref in refs)


def test_body_schemas_are_the_files_of_schemas(app: Any):
    """A component is its schemas/ file, definitions moved to components of their own."""
    components = build_document(app.router)["components"]["schemas"]
    release = json.loads(resources.files("schemas").joinpath("release.json").read_text())
    assert components["release"]["properties"].keys() == release["properties"].keys()
    assert components["release"]["properties"]["env"] == {
        "$ref": "#/components/schemas/release.env"
    }
    assert components["release.env"] == release["definitions"]["env"]
    assert "$schema" not in components["release"] and "definitions" not in components["release"]


def test_only_the_open_paths_are_documented_without_a_key(app: Any):
    """The document requires the key everywhere but /ping and /ca-cert."""
    doc = build_document(app.router)
    assert doc["security"] == [{"key": []}]
    exempt = {
        path
        for path, operations in doc["paths"].items()
        for operation in operations.values()
        if {} in operation.get("security", [{"key": []}])
    }
    assert exempt == OPEN_PATHS


async def test_the_document_is_served_to_key_holders_only(aiohttp_client: Any, app: Any):
    """GET /openapi.json answers the document with the key, and a bare 401 without it."""
    client: TestClient = await aiohttp_client(app)
    assert (await client.get("/openapi.json")).status == 401
    response = await client.get(
        "/openapi.json", headers={"Authorization": aiohttp.encode_basic_auth("", KEY)}
    )
    assert response.status == 200 and response.content_type == "application/json"
    served = await response.json()
    assert served == json.loads(json.dumps(build_document(app.router)))
    assert served["openapi"] == "3.1.0" and len(served["paths"]) == len(
        {path for _, path in routes(app.router)}
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []
