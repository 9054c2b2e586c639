"""The backup: the log up to a fixed event id as a tar (see replay/archive.py), in pieces
or into a file (`evenflow backup`)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from replay.archive import ArchiveWriter, archive_name
from replay.exits import CommandError
from replay.progress import Progress


async def archive_chunks(
    store: EventStore, last_event_id: int, created_at: datetime, progress: Progress | None = None
) -> AsyncIterator[bytes]:
    """The archive of every event up to `last_event_id`, piece by piece.

    Memory stays bounded by one part whatever the log's size. A failure raises before the
    manifest is produced, so an interrupted backup never ends like a complete one.
    """
    writer = ArchiveWriter(created_at)
    async for record in store.read(until=last_event_id):
        if progress is not None:
            progress.reach(record.id)
        chunk = writer.add(record)
        if chunk:
            yield chunk
    yield writer.finish(last_event_id)


def check_output(output: str) -> None:
    """Refuse, before anything is read, an output the backup could not be written to."""
    if output == "-":
        return
    target = Path(output)
    folder = target if target.is_dir() else target.parent
    if not folder.is_dir():
        raise CommandError(f"cannot write the backup to {output}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write the backup to {output}: {folder} is not writable")


async def write_backup_file(
    store: EventStore, output: str, progress: Progress | None = None
) -> Path | None:
    """`python -m controller backup -o FILE`: the same archive, into a file (or - for stdout).

    A file is written under a temporary name and renamed once complete, so a failed backup
    leaves no file that looks like one.
    """
    last_event_id = await store.last_id()
    created_at = datetime.now(UTC)
    progress = progress or Progress(enabled=False)
    progress.stage("backing up", last_event_id)
    if output == "-":
        async for chunk in archive_chunks(store, last_event_id, created_at, progress):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        progress.done()
        return None
    target = Path(output)
    if target.is_dir():
        target = target / f"{archive_name(created_at)}.tar"
    partial = target.with_name(target.name + ".partial")
    try:
        with _created(partial, target) as f:
            async for chunk in archive_chunks(store, last_event_id, created_at, progress):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        partial.replace(target)
    finally:
        progress.done()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target


def _created(partial: Path, target: Path) -> BinaryIO:
    try:
        return partial.open("wb")
    except OSError as exc:
        raise CommandError(f"cannot write the backup to {target}: {exc.strerror}") from None


async def backup_database(dsn: str, output: str, progress: Progress | None = None) -> Path | None:
    """The backup of the log in the database at `dsn` (no service needed)."""
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=2)
    try:
        return await write_backup_file(store, output, progress)
    finally:
        await store.close()
