"""Reading JSON bodies and writing JSON responses (orjson, schema-checked, Flynn's errors)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from commands.errors import JSONSyntaxError
from controller import keys
from controller.limits import check_content_type, decode_body, read_body


async def read_json(request: web.Request, schema: str) -> Any:
    """The request body decoded and validated against `schema`.

    An empty body or one that is not JSON is a syntax_error (Flynn answers an empty body
    with a 500), a body that breaks the schema a validation_error; so is a wrong
    Content-Type, a body nested too deep or one repeating a key, and a body that does not
    arrive in time is a 408 (see controller.limits).
    """
    check_content_type(request)
    body = await read_body(request)
    if not body.strip():
        raise JSONSyntaxError()
    doc = decode_body(body)
    request.app[keys.SCHEMAS].validate(schema, doc)
    return doc


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def encode_json(obj: Any) -> bytes:
    return orjson.dumps(obj)


def empty_response() -> web.Response:
    """Flynn's empty 200 (DELETE app, formation, route, job)."""
    return web.Response(status=200, content_type="text/plain", charset="utf-8")
