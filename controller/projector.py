"""Keeps the SQL read model current by following the log."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def sql_projector_context(app: web.Application) -> AsyncIterator[None]:
    yield
