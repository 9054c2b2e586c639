"""GET / and GET /dashboard/static/{name}: the dashboard's files, from the package.

Only the files the package holds are served, found by name in a table read once: a name
from a request never becomes a path. Each answer forbids framing (no clickjacking) and
allows scripts, styles and connections of this origin only.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from aiohttp import web

from commands.errors import NotFoundError

_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new version of the service may change them: browsers ask again (304 when the same).
    "Cache-Control": "no-cache",
}


@functools.cache
def files() -> dict[str, tuple[bytes, str, str]]:
    """Each file of static/ by name: its bytes, its content type and its ETag."""
    found = {}
    for entry in resources.files("controller.dashboard").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
            found[entry.name] = (body, _TYPES[suffix], etag)
    return found


def _serve(request: web.Request, name: str) -> web.Response:
    found = files().get(name)
    if found is None:
        raise NotFoundError()
    body, content_type, etag = found
    headers = _HEADERS | {"ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if content_type != "image/svg+xml" else None
    return web.Response(body=body, content_type=content_type, charset=charset, headers=headers)


async def index(request: web.Request) -> web.Response:
    return _serve(request, "index.html")


async def static(request: web.Request) -> web.Response:
    return _serve(request, request.match_info["name"])
