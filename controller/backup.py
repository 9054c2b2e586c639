"""The backup: the log up to a fixed event id, streamed as a tar (see replay/archive.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from replay.archive import ArchiveWriter, archive_name

logger = logging.getLogger(__name__)


def backup_headers(created_at: datetime) -> dict[str, str]:
    """Flynn's download headers, with Evenflow's file name."""
    return {
        "Content-Type": "application/tar",
        "Content-Disposition": f'attachment; filename="{archive_name(created_at)}.tar"',
    }


async def archive_chunks(
    store: EventStore, last_event_id: int, created_at: datetime
) -> AsyncIterator[bytes]:
    """The archive of every event up to `last_event_id`, piece by piece.

    Memory stays bounded by one part whatever the log's size. A failure raises before the
    manifest is produced, so an interrupted backup never ends like a complete one.
    """
    writer = ArchiveWriter(created_at)
    async for record in store.read(until=last_event_id):
        chunk = writer.add(record)
        if chunk:
            yield chunk
    yield writer.finish(last_event_id)


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


async def write_backup_file(store: EventStore, output: str) -> Path | None:
    """`python -m controller backup -o FILE`: the same archive, into a file (or - for stdout).

    A file is written under a temporary name and renamed once complete, so a failed backup
    leaves no file that looks like one.
    """
    last_event_id = await store.last_id()
    created_at = datetime.now(UTC)
    if output == "-":
        async for chunk in archive_chunks(store, last_event_id, created_at):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return None
    target = Path(output)
    if target.is_dir():
        target = target / f"{archive_name(created_at)}.tar"
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as f:
            async for chunk in archive_chunks(store, last_event_id, created_at):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        partial.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target


async def backup_database(dsn: str, output: str) -> Path | None:
    """The backup of the log in the database at `dsn` (no service needed)."""
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=2)
    try:
        return await write_backup_file(store, output)
    finally:
        await store.close()
