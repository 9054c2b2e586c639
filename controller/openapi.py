"""GET /openapi.json: an OpenAPI 3.1 description of the whole API, built from the URL table
(`controller/urls.py`), request bodies from the files of `schemas/`.

Flynn has no such endpoint; here it needs the key, like the rest of the API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from controller.actors import REQUEST_ID_HEADER
from controller.endpoints import JSON, Access, Endpoint
from controller.handlers.common import IDEMPOTENCY_KEY
from controller.http import json_response
from service.settings import EVENFLOW_VERSION

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
    "audit": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["entries", "next_before_id"],
                "properties": {
                    "entries": {"type": "array", "items": {"type": "object"}},
                    "next_before_id": {
                        "type": ["integer", "null"],
                        "description": "the before_id of the next page; null: no more",
                    },
                },
            }
        }
    },
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
_KEY = {
    "type": "http",
    "scheme": "basic",
    "description": (
        "the key as the password; what it may call is its scope (x-evenflow-scope of each "
        "operation: stream < read < deploy < admin, each including the ones before it), and "
        "a key limited to some apps sees and changes only those (x-evenflow-apps)"
    ),
}
# Every answer names its request (controller/actors.py).
_REQUEST_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x20-\\x7e]+$"}
_REQUEST_ID_PARAMETER = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "description": (
        "The request's id, kept with the events it writes (their actor) and echoed; "
        "printable ASCII of at most 128 characters, else one is made"
    ),
    "schema": _REQUEST_ID,
}
_REQUEST_ID_HEADER = {
    "description": "The request's id (its own, or one made)",
    "schema": _REQUEST_ID,
}
_FORBIDDEN_RESPONSE = {
    "description": "The key is known, but its scope or its apps do not cover this",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_KEY_PARAM = {
    "type": "apiKey",
    "in": "query",
    "name": "key",
    "description": (
        "the key as ?key=, on the routes that say so, when no password is given: a stream "
        "(with Accept: text/event-stream) or a backup, which browsers open without headers"
    ),
}
_PARAMETER = re.compile(r"{([^}/]+)}")
_REF = re.compile(r"^#/definitions/(.+)$")


def build_document(urls: Sequence[Endpoint]) -> JSON:
    """The OpenAPI document of the endpoints `urls`, in their order."""
    paths: dict[str, JSON] = {}
    for url in urls:
        paths.setdefault(url.path, {})[url.method.lower()] = _operation(url)
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
            "schemas": {"Error": _ERROR, **_body_schemas()},
            "securitySchemes": {"key": _KEY, "key_param": _KEY_PARAM},
        },
        "security": [{"key": []}],
    }


def _operation(url: Endpoint) -> JSON:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PARAMETER.findall(url.path)
    ]
    parameters += [{"name": n, "in": "query", "schema": s} for n, s in url.query]
    parameters += [{"name": n, "in": "header", "schema": s} for n, s in url.headers]
    if url.method in _WRITES:
        parameters.append(_IDEMPOTENCY_KEY)
    parameters.append(_REQUEST_ID_PARAMETER)
    ok: JSON = {"description": "OK", "content": _content(url.answers)}
    ok["headers"] = {REQUEST_ID_HEADER: _REQUEST_ID_HEADER}
    responses: JSON = {
        "200": ok,
        "401": {"description": "No key or a wrong key: a bare 401, empty body"},
    }
    if not url.open:
        parameters.append(_POSITION_PARAMETER)
        ok["headers"]["Evenflow-Event-Id"] = _POSITION_HEADER
        responses["403"] = _FORBIDDEN_RESPONSE
        responses["503"] = _LAGGING_RESPONSE
    if _PARAMETER.search(url.path):
        responses["404"] = {"description": "Not found: a bare 404, empty body"}
    if url.body is not None:
        responses["400"] = _ERROR_RESPONSE
        responses["413"] = _ERROR_RESPONSE
    responses["default"] = _ERROR_RESPONSE
    doc: JSON = {
        "operationId": _operation_id(url.method, url.path),
        "summary": url.summary,
        "responses": responses,
    }
    if parameters:
        doc["parameters"] = parameters
    if url.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{url.body}"}}
            },
        }
    if url.open:
        doc["security"] = [{}, {"key": []}]
    elif url.access in (Access.KEY_OR_PARAM, Access.KEY_OR_STREAM_PARAM):
        doc["security"] = [{"key": []}, {"key_param": []}]
    if not url.open:
        doc["x-evenflow-scope"] = str(url.scope)
        doc["x-evenflow-apps"] = url.app_limit.name.lower()
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


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])
