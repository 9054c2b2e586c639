"""Health and static endpoints: /ping, /.well-known/status, /ca-cert."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from commands.errors import NotFoundError
from controller import keys
from controller.settings import EVENFLOW_VERSION, FLYNN_VERSION
from eventstore.store import EventStore, StoreUnavailableError


async def ping(request: web.Request) -> web.Response:
    return web.Response(status=200)


#: Seconds the status check waits for the log's database before calling it unhealthy.
DATABASE_CHECK_TIMEOUT = 2.0


async def status(request: web.Request) -> web.Response:
    """Flynn's status document; unhealthy (500) when the log or a background task is down."""
    problems = {name: problem for name, problem in request.app[keys.HEALTH].items() if problem}
    if problem := await _database_problem(request.app[keys.STORE]):
        problems["database"] = problem
    healthy = not problems
    data: dict[str, object] = {
        "status": "healthy" if healthy else "unhealthy",
        "version": FLYNN_VERSION,
        "evenflow": EVENFLOW_VERSION,
        "last_event_id": request.app[keys.READ_MODEL].last_id,
    }
    if problems:
        data["problems"] = problems
    # Flynn pretty-prints this one document, with a trailing newline.
    body = orjson.dumps({"data": data}, option=orjson.OPT_INDENT_2) + b"\n"
    return web.Response(status=200 if healthy else 500, body=body, content_type="application/json")


async def ca_cert(request: web.Request) -> web.Response:
    pem = request.app[keys.SETTINGS].ca_cert
    if not pem:
        raise NotFoundError()
    return web.Response(body=pem.encode(), headers={"Content-Type": "application/x-x509-ca-cert"})


async def _database_problem(store: EventStore) -> str:
    """What is wrong with the log's database: nothing ("") when it answers a query within
    DATABASE_CHECK_TIMEOUT (Flynn's status pings its database too)."""
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT):
            await store.last_id()
    except TimeoutError:
        return f"the event log did not answer within {DATABASE_CHECK_TIMEOUT:g}s"
    except StoreUnavailableError as exc:
        return str(exc)
    return ""
