"""Health and static endpoints: /ping, /.well-known/status, /ca-cert."""

from __future__ import annotations

import asyncio
import time
import weakref

import orjson
from aiohttp import web

from commands.errors import NotFoundError
from controller import keys
from eventstore.store import EventStore, StoreUnavailableError
from service.settings import EVENFLOW_VERSION, FLYNN_VERSION


async def ping(request: web.Request) -> web.Response:
    return web.Response(status=200)


#: Seconds the status waits for the log's database before calling it unhealthy: the whole
#: answer then still comes within 2 s.
DATABASE_CHECK_TIMEOUT = 1.5


async def status(request: web.Request) -> web.Response:
    """Flynn's status document; unhealthy (500) when the log or a background task is down."""
    problems = {name: problem for name, problem in request.app[keys.HEALTH].items() if problem}
    if problem := await _probe(request.app).problem():
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


class DatabaseProbe:
    """Asks the log's database for its head, in a task of its own, one question at a time.

    The status waits for the answer at most DATABASE_CHECK_TIMEOUT but never for the
    question to be withdrawn: cancelling a query on a database that does not answer waits
    for the database too. While a question is unanswered, the next status waits for the
    same one rather than asking again, so a hung database does not pile them up.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.asking: asyncio.Task[int] | None = None
        self.since = 0.0  # when the unanswered question was asked

    async def problem(self) -> str:
        """What is wrong with the log's database: "" when it answers in time."""
        if self.asking is None:
            self.since = time.monotonic()
            self.asking = asyncio.create_task(self.store.last_id())
            # Its failure is read here, or by nobody if no status asks again: not an error.
            self.asking.add_done_callback(lambda task: task.cancelled() or task.exception())
        asking = self.asking
        done, _ = await asyncio.wait({asking}, timeout=DATABASE_CHECK_TIMEOUT)
        if not done:
            waited = time.monotonic() - self.since
            return f"the event log's database has not answered for {waited:.1f}s"
        if self.asking is asking:
            self.asking = None
        error = asking.exception()
        if error is None:
            return ""
        if isinstance(error, StoreUnavailableError) and str(error).strip():
            return str(error)
        return f"the event log's database failed: {type(error).__name__} {error}".strip()


_probes: weakref.WeakKeyDictionary[web.Application, DatabaseProbe] = weakref.WeakKeyDictionary()


def _probe(app: web.Application) -> DatabaseProbe:
    probe = _probes.get(app)
    if probe is None:
        probe = _probes[app] = DatabaseProbe(app[keys.STORE])
    return probe
