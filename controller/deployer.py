"""Drives deployments: runs each app's strategy by changing formations and waiting for job events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def deployer_context(app: web.Application) -> AsyncIterator[None]:
    yield
