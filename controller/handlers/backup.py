"""Backup over HTTP: GET /backup streams the log as a tar (`?key=` allowed, as in Flynn)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from controller import keys
from eventstore.store import EventStore
from replay.archive import archive_name
from service.backup import archive_chunks

logger = logging.getLogger(__name__)


async def backup(request: web.Request) -> web.StreamResponse:
    return await send_backup(request, request.app[keys.STORE])


def backup_headers(created_at: datetime) -> dict[str, str]:
    """Flynn's download headers, with Evenflow's file name."""
    return {
        "Content-Type": "application/tar",
        "Content-Disposition": f'attachment; filename="{archive_name(created_at)}.tar"',
    }


async def send_backup(request: web.Request, store: EventStore) -> web.StreamResponse:
    """Stream the backup; on failure cut the connection, so the download visibly fails."""
    # The snapshot's end is fixed first: events appended meanwhile are not in this backup.
    last_event_id = await store.last_id()
    created_at = datetime.now(UTC)
    response = web.StreamResponse(headers=backup_headers(created_at))
    await response.prepare(request)
    try:
        async for chunk in archive_chunks(store, last_event_id, created_at):
            await response.write(chunk)
    except ConnectionError:
        return response  # the client went away
    except Exception:
        logger.exception("backup failed after %d bytes", response.body_length)
        if request.transport is not None:
            # An abort (not a close) ends the chunked body without its last chunk: clients
            # report a truncated transfer instead of a short, valid-looking tar.
            request.transport.abort()
        return response
    await response.write_eof()
    return response
