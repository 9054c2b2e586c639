"""Reading JSON bodies and writing JSON responses (orjson, schema-checked, Flynn's errors)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from commands.errors import JSONSyntaxError
from controller import keys
from controller.endpoints import endpoint
from controller.limits import check_content_type, decode_body, read_body


async def read_json(request: web.Request) -> Any:
    """The request body decoded and validated against its endpoint's schema (its row of
    the URL table names it).

    An empty body or one that is not JSON is a syntax_error (Flynn answers an empty body
    with a 500), a body that breaks the schema a validation_error; so is a wrong
    Content-Type, a body nested too deep or one repeating a key, and a body that does not
    arrive in time is a 408 (see controller.limits).
    """
    url = endpoint(request)
    if url.body is None:
        raise LookupError(f"{url.method} {url.path} takes no body (see controller/urls.py)")
    check_content_type(request)
    body = await read_body(request)
    if not body.strip():
        raise JSONSyntaxError()
    doc = decode_body(body)
    request.app[keys.SCHEMAS].validate(url.body, doc)
    return doc


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def encode_json(obj: Any) -> bytes:
    return orjson.dumps(obj)


def empty_response() -> web.Response:
    """Flynn's empty 200 (DELETE app, formation, route, job)."""
    return web.Response(status=200, content_type="text/plain", charset="utf-8")
