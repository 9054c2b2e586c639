"""What the URL table says of each endpoint, and how a request finds its own entry.

An `Endpoint` is one row of the table in `controller/urls.py`: method, path and handler for
aiohttp's router; its summary, answers, query parameters and headers for the OpenAPI
document; its body schema for `read_json`; who may call it for the middleware. What a
request needs of its row is worked out here once, when the table is read, not per request.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import attrs
from aiohttp import web

from domain.keys import Scope
from service.metrics.requests import UNMATCHED

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AppLimit(enum.Enum):
    """What a route is to a key limited to some apps."""

    #: The `{app}` of its path must be one of the key's (else a bare 404: none is revealed).
    PATH = "the app in the path"
    #: Its handler shows and changes only the key's apps' objects (lists filtered, others 404).
    FILTER = "filtered to the key's apps"
    #: Not an app's object (artifacts, providers, the service's status): as for any key.
    GLOBAL = "not an app's"
    #: Never for an app-limited key (a new app, the whole log, the keys): 403.
    REFUSE = "refused"


class Access(enum.Enum):
    """Who may call an endpoint (Flynn: controller.go muxHandler)."""

    #: The key, as the password of HTTP Basic auth.
    KEY = "key"
    #: Or `?key=` with `Accept: text/event-stream`: browsers' EventSource cannot set headers.
    KEY_OR_STREAM_PARAM = "key or ?key= on a stream"
    #: Or `?key=`: a download link cannot set headers either.
    KEY_OR_PARAM = "key or ?key="
    #: Anyone.
    OPEN = "open"
    #: Anyone who gives no password at all; a wrong one is refused (Flynn: /ca-cert).
    OPEN_WITHOUT_PASSWORD = "open without a password"


@attrs.frozen(eq=False)  # rows are compared by identity: their JSON Schemas do not hash
class Endpoint:
    """One method on one path: a row of the URL table."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: str | None = None  # the request body's schema: schemas/<body>.json
    access: Access = Access.KEY
    answers: tuple[str, ...] = ("object",)  # kinds of 200 answers (see controller/openapi.py)
    query: tuple[tuple[str, JSON], ...] = ()  # (name, JSON Schema) of each query parameter
    headers: tuple[tuple[str, JSON], ...] = ()  # (name, JSON Schema) of each request header
    #: The least scope a key needs (controller/auth.py); a row that says none: admin only.
    scope: Scope = Scope.ADMIN
    #: What it is to a key limited to some apps; unsaid: PATH for `{app}` paths, else REFUSE.
    app_limit: AppLimit = attrs.field()

    # Worked out from the above when the table is read.
    #: No key needed: no catch-up with the log either, and no position in the answer.
    open: bool = attrs.field(init=False)
    #: It may hold a stream slot (controller/limits.py) that must be given back.
    streams: bool = attrs.field(init=False)
    #: Where the request names an app ("path": `{app}`, "query": `?app_id=`), if it does.
    names_app: Literal["path", "query"] | None = attrs.field(init=False)
    #: `scope.rank`, read on every request.
    scope_rank: int = attrs.field(init=False)
    #: The `route` label of its requests' metrics: the path template, never a path.
    label: str = attrs.field(init=False)

    @app_limit.default
    def _app_limit(self) -> AppLimit:
        return AppLimit.PATH if "{app}" in self.path else AppLimit.REFUSE

    @open.default
    def _open(self) -> bool:
        return self.access in (Access.OPEN, Access.OPEN_WITHOUT_PASSWORD)

    @streams.default
    def _streams(self) -> bool:
        return "stream" in self.answers

    @scope_rank.default
    def _scope_rank(self) -> int:
        return self.scope.rank

    @label.default
    def _label(self) -> str:
        return self.path or UNMATCHED

    @names_app.default
    def _names_app(self) -> Literal["path", "query"] | None:
        if "{app}" in self.path:
            return "path"
        if any(name == "app_id" for name, _ in self.query):
            return "query"
        return None


async def _no_route(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()  # never called: the router answers such requests itself


#: The row of a request no route answers (the router's 404 or 405): the key is wanted
#: first, as on every other path.
UNROUTED = Endpoint(
    "*", "", _no_route, "no such route", scope=Scope.STREAM, app_limit=AppLimit.GLOBAL
)


#: The endpoint of each route of the router (GET's HEAD twin included).
ENDPOINTS = web.AppKey[Mapping[web.AbstractRoute, Endpoint]]("endpoints")


def endpoint(request: web.Request) -> Endpoint:
    """The request's row of the URL table (UNROUTED when no route matched)."""
    return request.app[ENDPOINTS].get(request.match_info.route, UNROUTED)
