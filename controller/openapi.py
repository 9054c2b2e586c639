"""GET /openapi.json: an OpenAPI 3.1 description of the whole API.

Built once at start-up from the route table (`app.router`) and `OPERATIONS`, a small table
that names each operation's request-body schema (a file of `schemas/`), query parameters and
kind of answer. A route missing from the table is still described, generically; a test
(tests/test_openapi.py) fails when that happens, so the table follows the routes.

Flynn has no such endpoint; here it needs the key, like the rest of the API.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import attrs
import orjson
from aiohttp import web

from controller.handlers.common import IDEMPOTENCY_KEY
from controller.http import json_response
from service.settings import EVENFLOW_VERSION

JSON = dict[str, Any]

#: Paths that answer without a key (see controller/middlewares.py OPEN_PATHS and /ca-cert).
OPEN_PATHS = frozenset({"/ping", "/ca-cert"})


@attrs.frozen
class Operation:
    """What the route table cannot say about an operation."""

    summary: str
    body: str | None = None  # the request body's schema (schemas/<body>.json)
    query: tuple[tuple[str, JSON], ...] = ()  # (name, schema) of each query parameter
    headers: tuple[tuple[str, JSON], ...] = ()
    answers: tuple[str, ...] = ("object",)  # kinds of 200 answers: keys of _ANSWERS


_INT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_BOOL_TEXT = {"type": "string", "enum": ["true", "false"]}
_EVENT_FILTER = (
    ("app_id", {"type": "string"}),
    ("object_types", {"type": "string", "description": "comma-separated object types"}),
    ("object_id", {"type": "string"}),
)
_ACCEPT = {"type": "string", "description": "exactly application/json for a list; else a stream"}
#: Every write takes it (see controller/handlers/common.py and the README's "Idempotent writes").
_IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "description": (
        "Applies the write at most once: a retry with the same key and the same request "
        "(method, path, body) is answered with the first attempt's result for 24 h of log "
        "time, without being applied again; the same key with another request is a 409, "
        "and a key is never applied twice, even after those 24 h (a 409 then)."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/ping"): Operation("Liveness (no key needed)", answers=("empty",)),
    ("GET", "/.well-known/status"): Operation(
        "Health: 200 healthy, 500 unhealthy", answers=("status",)
    ),
    ("GET", "/ca-cert"): Operation("The cluster CA certificate (no key needed)", answers=("pem",)),
    ("GET", "/openapi.json"): Operation("This document"),
    ("POST", "/apps"): Operation("Create an app", body="app"),
    ("GET", "/apps"): Operation("List apps, newest first", answers=("list",)),
    ("GET", "/apps/{app}"): Operation("Get an app by id or name"),
    ("POST", "/apps/{app}"): Operation("Update an app", body="app_update"),
    ("POST", "/apps/{app}/meta"): Operation("Update an app's meta", body="app_update"),
    ("DELETE", "/apps/{app}"): Operation("Delete an app", answers=("empty",)),
    ("POST", "/artifacts"): Operation("Create an artifact", body="artifact"),
    ("GET", "/artifacts"): Operation("List artifacts", answers=("list",)),
    ("GET", "/artifacts/{id}"): Operation("Get an artifact"),
    ("POST", "/releases"): Operation("Create a release", body="release"),
    ("GET", "/releases"): Operation("List releases", answers=("list",)),
    ("GET", "/releases/{id}"): Operation("Get a release"),
    ("PUT", "/apps/{app}/release"): Operation("Set an app's release", body="app_release"),
    ("GET", "/apps/{app}/release"): Operation("Get an app's release"),
    ("GET", "/apps/{app}/releases"): Operation("List an app's releases", answers=("list",)),
    ("DELETE", "/apps/{app}/releases/{id}"): Operation(
        "Delete a release from an app (not its current one, nor one scaled up)",
        answers=("empty",),
    ),
    ("PUT", "/apps/{app}/formations/{release}"): Operation("Scale a release", body="formation"),
    ("GET", "/apps/{app}/formations/{release}"): Operation(
        "Get a formation", query=(("expand", _BOOL_TEXT),)
    ),
    ("DELETE", "/apps/{app}/formations/{release}"): Operation(
        "Delete a formation", answers=("empty",)
    ),
    ("GET", "/apps/{app}/formations"): Operation("List an app's formations", answers=("list",)),
    ("GET", "/formations"): Operation(
        "Active formations (?active=true), or the scheduler's stream (Accept: text/event-stream)",
        query=(("active", _BOOL_TEXT), ("since", {"type": "string", "format": "date-time"})),
        headers=(("Accept", {"type": "string"}),),
        answers=("list", "stream"),
    ),
    ("POST", "/apps/{app}/jobs"): Operation("Run a one-off job", body="new_job"),
    ("GET", "/apps/{app}/jobs/{job}"): Operation("Get a job"),
    ("PUT", "/apps/{app}/jobs/{job}"): Operation("Report a job's state", body="job"),
    ("GET", "/apps/{app}/jobs"): Operation("List an app's jobs", answers=("list",)),
    ("DELETE", "/apps/{app}/jobs/{job}"): Operation("Stop a job", answers=("empty",)),
    ("GET", "/active-jobs"): Operation("List active jobs", answers=("list",)),
    ("POST", "/apps/{app}/deploy"): Operation("Deploy a release", body="deployment"),
    ("GET", "/deployments/{id}"): Operation("Get a deployment"),
    ("GET", "/apps/{app}/deployments"): Operation("List an app's deployments", answers=("list",)),
    ("POST", "/providers"): Operation("Create a resource provider", body="provider"),
    ("GET", "/providers"): Operation("List providers", answers=("list",)),
    ("GET", "/providers/{provider}"): Operation("Get a provider by id or name"),
    ("POST", "/providers/{provider}/resources"): Operation(
        "Provision a resource", body="resource_req"
    ),
    ("GET", "/providers/{provider}/resources"): Operation(
        "List a provider's resources", answers=("list",)
    ),
    ("PUT", "/providers/{provider}/resources/{resource}"): Operation(
        "Register a resource", body="resource"
    ),
    ("GET", "/providers/{provider}/resources/{resource}"): Operation("Get a resource"),
    ("DELETE", "/providers/{provider}/resources/{resource}"): Operation("Deprovision a resource"),
    ("GET", "/apps/{app}/resources"): Operation("List an app's resources", answers=("list",)),
    ("POST", "/apps/{app}/routes"): Operation("Create a route", body="route"),
    ("GET", "/apps/{app}/routes"): Operation("List an app's routes", answers=("list",)),
    ("GET", "/apps/{app}/routes/{type}/{id}"): Operation("Get a route"),
    ("PUT", "/apps/{app}/routes/{type}/{id}"): Operation("Update a route", body="route"),
    ("DELETE", "/apps/{app}/routes/{type}/{id}"): Operation("Delete a route", answers=("empty",)),
    ("PUT", "/domain"): Operation("Migrate the cluster domain", body="domain_migration"),
    ("GET", "/apps/{app}/log"): Operation(
        "An app's log: JSON lines, or a stream (Accept: text/event-stream)",
        query=(
            ("lines", {"type": "integer", "minimum": 0, "maximum": 10_000}),
            ("follow", _BOOL_TEXT),
            ("job_id", {"type": "string"}),
            ("process_type", {"type": "string"}),
        ),
        answers=("text", "stream"),
    ),
    ("GET", "/events"): Operation(
        "The event log: a list (Accept: application/json, newest first) or a stream",
        query=(
            *_EVENT_FILTER,
            ("before_id", _INT),
            ("since_id", _INT),
            ("count", _INT),
            ("past", _BOOL_TEXT),
        ),
        headers=(("Accept", _ACCEPT), ("Last-Event-Id", _INT)),
        answers=("list", "stream"),
    ),
    ("GET", "/events/{id}"): Operation("Get an event"),
    ("GET", "/backup"): Operation("Download a backup of the log (a tar)", answers=("tar",)),
}

_ERROR = {
    "type": "object",
    "description": "Flynn's error document",
    "required": ["code", "message", "retry"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "detail": {},
        "retry": {"type": "boolean"},
    },
}
_ANSWERS: dict[str, JSON] = {
    "object": {"application/json": {"schema": {"type": "object"}}},
    "list": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    "status": {"application/json": {"schema": {"type": "object"}}},
    "empty": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}},
    "stream": {"text/event-stream": {"schema": {"type": "string"}}},
    "tar": {"application/tar": {"schema": {"type": "string", "format": "binary"}}},
    "text": {"text/plain": {"schema": {"type": "string"}}},
    "pem": {"application/x-x509-ca-cert": {"schema": {"type": "string"}}},
}
_ERROR_RESPONSE = {
    "description": "Flynn's error document",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
# Read-your-writes (controller/consistency.py): one header, the same both ways.
_POSITION = {"type": "string", "pattern": "^[0-9]{1,19}$"}
_POSITION_PARAMETER = {
    "name": "Evenflow-Event-Id",
    "in": "header",
    "description": (
        "The largest Evenflow-Event-Id the client has seen: the answer comes from a state "
        "that holds that event (a 400 if the log has no such event yet; a 503 to retry if "
        "this controller does not get there within CONSISTENCY_TIMEOUT)"
    ),
    "schema": _POSITION,
}
_POSITION_HEADER = {
    "description": (
        "The log position this answer stands for: the id of the last event a write "
        "recorded, else the position of the state it was answered from"
    ),
    "schema": _POSITION,
}
_LAGGING_RESPONSE = {
    "description": "This controller has not read the log up to Evenflow-Event-Id in time",
    "headers": {"Retry-After": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_PARAMETER = re.compile(r"{([^}/]+)}")
_REF = re.compile(r"^#/definitions/(.+)$")


def build_document(router: web.UrlDispatcher) -> JSON:
    """The OpenAPI document of every route of `router` (HEAD twins of GETs left out)."""
    schemas = _body_schemas()
    paths: dict[str, JSON] = {}
    for method, path in routes(router):
        operation = OPERATIONS.get((method, path)) or Operation(f"{method} {path}")
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Evenflow: Flynn's controller API",
            "version": EVENFLOW_VERSION,
            "description": (
                "Not found is a bare 404 with an empty body and a missing or wrong key a "
                "bare 401, as in Flynn; every other error is an Error document. Bodies need "
                "Content-Type: application/json, and an integer is an integer literal "
                "(1.0 is refused, as Flynn's decoder refuses it)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR, **schemas},
            "securitySchemes": {"key": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"key": []}],
    }


def routes(router: web.UrlDispatcher) -> list[tuple[str, str]]:
    """(method, path template) of every route, in the table's order; HEAD is left out."""
    found = []
    for route in router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path and route.method not in ("HEAD", "*"):
            found.append((route.method, path))
    return found


def _operation(method: str, path: str, op: Operation) -> JSON:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PARAMETER.findall(path)
    ]
    parameters += [{"name": n, "in": "query", "schema": s} for n, s in op.query]
    parameters += [{"name": n, "in": "header", "schema": s} for n, s in op.headers]
    if method in _WRITES:
        parameters.append(_IDEMPOTENCY_KEY)
    ok: JSON = {"description": "OK", "content": _content(op.answers)}
    responses: JSON = {
        "200": ok,
        "401": {"description": "No key or a wrong key: a bare 401, empty body"},
    }
    if path not in OPEN_PATHS:
        parameters.append(_POSITION_PARAMETER)
        ok["headers"] = {"Evenflow-Event-Id": _POSITION_HEADER}
        responses["503"] = _LAGGING_RESPONSE
    if _PARAMETER.search(path):
        responses["404"] = {"description": "Not found: a bare 404, empty body"}
    if op.body is not None:
        responses["400"] = _ERROR_RESPONSE
        responses["413"] = _ERROR_RESPONSE
    responses["default"] = _ERROR_RESPONSE
    doc: JSON = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "responses": responses,
    }
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}
            },
        }
    if path in OPEN_PATHS:
        doc["security"] = [{}, {"key": []}]
    return doc


def _content(kinds: tuple[str, ...]) -> JSON:
    content: JSON = {}
    for kind in kinds:
        content.update(_ANSWERS[kind])
    return content


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "_", path.replace("{", "by_")).strip("_")
    return f"{method.lower()}_{words or 'root'}"


def _body_schemas() -> dict[str, JSON]:
    """schemas/*.json as components: `definitions` become components of their own."""
    components: dict[str, JSON] = {}
    for entry in sorted(resources.files("schemas").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        name = entry.name.removesuffix(".json")
        schema = json.loads(entry.read_text(encoding="utf-8"))
        schema.pop("$schema", None)
        for key, definition in schema.pop("definitions", {}).items():
            components[f"{name}.{key}"] = _rewrite_refs(definition, name)
        components[name] = _rewrite_refs(schema, name)
    return components


def _rewrite_refs(node: Any, name: str) -> Any:
    if isinstance(node, list):
        return [_rewrite_refs(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _rewrite_refs(value, name) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and (match := _REF.match(ref)):
        out["$ref"] = f"#/components/schemas/{name}.{match.group(1)}"
    return out


# -- serving it ---------------------------------------------------------------------------

OPENAPI = web.AppKey("openapi", bytes)


async def build_on_startup(app: web.Application) -> None:
    """on_startup: the route table is complete (and frozen) now; encode the document once."""
    app[OPENAPI] = orjson.dumps(build_document(app.router))


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])
