"""CORS: which browser origins may call the API, and whether with the browser's credentials.

Flynn (pkg/httphelper CORSAllowAll) reflects every origin, `null` included, and allows
credentials: any page a user visits could then call the API with the credentials the browser
holds for it (HTTP auth it remembers). Here, from CORS_ORIGINS:

* an origin listed there gets itself back with `Access-Control-Allow-Credentials: true`;
* with `*` listed (the default), any other origin gets `Access-Control-Allow-Origin: *`,
  which browsers honour only for requests without credentials: a page must send the key
  itself (an Authorization header it sets, or `?key=` on a stream);
* otherwise no CORS headers at all, and browsers refuse the answer to the page.

`null` (sandboxed frames, file: pages: anyone can send it) never gets credentials.
"""

from __future__ import annotations

import functools

from aiohttp import web

COMMON_HEADERS = (
    ("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD"),
    (
        "Access-Control-Allow-Headers",
        "Auth-Key, Authorization, Accept, Content-Type, If-Match, If-None-Match, X-GRPC-Web, "
        "Last-Event-Id, Evenflow-Event-Id, Idempotency-Key",
    ),
    ("Access-Control-Expose-Headers", "ETag, Content-Disposition, Evenflow-Event-Id"),
    ("Access-Control-Max-Age", "3600"),
)
Headers = tuple[tuple[str, str], ...]


# A browser sends the same Origin with every request: its headers are worked out once.
@functools.lru_cache(maxsize=256)
def cors_headers(origin: str, allowed: tuple[str, ...]) -> Headers | None:
    """The CORS headers for a request from `origin`; None: the origin is not allowed."""
    first: Headers
    if origin in allowed and origin != "null":
        first = (
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
        )
    elif "*" in allowed:
        first = (("Access-Control-Allow-Origin", "*"),)
    else:
        return None
    # Vary: the answer to another origin, or to no origin, differs.
    return (*first, ("Vary", "Origin"), *COMMON_HEADERS)


def preflight(request: web.Request, allowed: tuple[str, ...]) -> web.Response | None:
    """The answer to a CORS preflight (before authentication), None for other requests: 200,
    with the CORS headers when the origin is allowed (Flynn: any OPTIONS with an Origin)."""
    if request.method != "OPTIONS":
        return None
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    headers = cors_headers(origin, allowed)
    return web.Response(status=200, headers=dict(headers or ()))
