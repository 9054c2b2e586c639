"""Backup over HTTP: GET /backup streams the log as a tar (`?key=` allowed, as in Flynn)."""

from __future__ import annotations

from aiohttp import web

from controller import keys
from controller.backup import send_backup


async def backup(request: web.Request) -> web.StreamResponse:
    return await send_backup(request, request.app[keys.STORE])
