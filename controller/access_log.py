"""The access log: one line per request, with any ?key= credential redacted."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_KEY_PARAM = re.compile(r"([?&]key=)[^&#]*", re.IGNORECASE)


def redact(path_qs: str) -> str:
    return _KEY_PARAM.sub(r"\1[REDACTED]", path_qs)


class AccessLogger(AbstractAccessLogger):
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
