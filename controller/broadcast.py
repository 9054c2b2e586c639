"""One subscription to the log per process, fanned out to every event-stream client."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def broadcast_context(app: web.Application) -> AsyncIterator[None]:
    yield
