"""The access log: one line per request, with any ?key= credential redacted."""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


def redact(path_qs: str) -> str:
    """`path_qs` with the value of every `key` parameter replaced by [REDACTED].

    Names are compared decoded, as the server reads them: `?%6Bey=` is a key too.
    """
    path, question, query = path_qs.partition("?")
    if not question:
        return path_qs
    query, hash_sign, fragment = query.partition("#")
    parts = query.split("&")
    for i, part in enumerate(parts):
        name = part.partition("=")[0]
        if unquote_plus(name).strip().lower() == "key":
            parts[i] = f"{name}=[REDACTED]"
    return f"{path}?{'&'.join(parts)}{hash_sign}{fragment}"


class AccessLogger(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        # Read once per connection by aiohttp: below INFO nothing is formatted or timed
        # (redact and the clock cost 6 % of a small GET).
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.2fms',
            request.remote,
            request.method,
            redact(request.path_qs),
            response.status,
            response.body_length,
            time * 1000,
        )
