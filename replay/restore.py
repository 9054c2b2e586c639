"""`replay restore`: a backup loaded into a database with its original ids and times.

The archive is checked whole before anything is written; the rows go in by COPY in one
transaction under the log's append lock (all or nothing, and no append can interleave);
afterwards the log is read back and must hash exactly as the manifest says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from eventstore.migrate import migrate
from eventstore.postgres import CHANNEL, PostgresEventStore
from projections.changes import everything
from projections.sql import SqlReadModel
from replay.archive import Manifest, encode_line
from replay.fold import rebuild
from replay.progress import Progress
from replay.reader import ArchiveReader, read_manifest, verify_archive

COLUMNS = [
    "event_id",
    "type",
    "object_type",
    "object_id",
    "app_id",
    "op",
    "unique_id",
    "data",
    "created_at",
    "meta",
]


class RestoreError(RuntimeError):
    """The restore was refused or its result does not match the backup."""


async def _json_as_bytes(conn: asyncpg.Connection) -> None:
    # As the store does: the payload travels as its stored text, byte for byte.
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary"
    )


def _rows(path: Path | str, manifest: Manifest, progress: Progress) -> Iterator[tuple[Any, ...]]:
    for record in ArchiveReader(path, manifest):
        progress.add()
        yield record  # a RecordedEvent is a tuple in the order of COLUMNS


async def load(
    dsn: str, path: Path | str, manifest: Manifest, *, force: bool, progress: Progress
) -> None:
    """COPY the archive's events into `events`, refusing a non-empty log unless `force`."""
    conn = await asyncpg.connect(dsn)
    try:
        await _json_as_bytes(conn)
        await migrate(conn, "eventstore", "eventstore")
        async with conn.transaction():
            # The append lock: no controller can append between the check and the commit.
            await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            held = await conn.fetchval("SELECT count(*) FROM events")
            if held and not force:
                raise RestoreError(
                    f"the database already holds {held} events: refusing to restore over "
                    "them (--force replaces them)"
                )
            if held:
                await conn.execute("TRUNCATE events")
            await conn.copy_records_to_table(
                "events", records=_rows(path, manifest, progress), columns=COLUMNS
            )
            # Controllers already following this database look now, not at their next poll.
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(manifest.last_event_id))
    finally:
        await conn.close()


async def check_database(
    store: PostgresEventStore, manifest: Manifest, progress: Progress | None = None
) -> list[str]:
    """How the log in the database differs from the manifest (empty: identical bytes)."""
    digest, count, size, first, last = hashlib.sha256(), 0, 0, None, 0
    async for record in store.read():
        if progress is not None:
            progress.reach(record.id)
        line = encode_line(record)
        digest.update(line)
        size += len(line)
        count += 1
        first = first or record.id
        last = record.id
    problems = []
    if count != manifest.event_count:
        problems.append(f"{count} events in the database, {manifest.event_count} in the backup")
    if first != manifest.first_event_id or (count and last != manifest.last_event_id):
        problems.append(
            f"event ids {first}..{last}, backup {manifest.first_event_id}..{manifest.last_event_id}"
        )
    if size != manifest.log_bytes or digest.hexdigest() != manifest.log_sha256:
        problems.append("the restored log does not hash as the backup's")
    return problems


async def rebuild_sql(store: PostgresEventStore, progress: Progress | None = None) -> int:
    """Drop and rebuild the SQL read model from the log (folded in memory, as the service
    folds it, and written whole in one transaction); returns its position."""
    sql = SqlReadModel(store.pool)
    await sql.migrate()
    rebuilt = await rebuild(store, progress=progress)
    state, position, at = rebuilt.model.state, rebuilt.last_event_id, rebuilt.last_event_at
    written = await sql.write(lambda _: everything(state, position, at), reset=True)
    return written.position


async def restore(
    dsn: str, path: Path | str, *, force: bool = False, progress: Progress | None = None
) -> Manifest:
    """Check the archive, load it, check the database against it, rebuild the SQL model:
    each a stage of `progress`."""
    progress = progress or Progress(enabled=False)
    expected = read_manifest(path)  # its count, for the first stage's bar; checked next
    manifest = verify_archive(path, progress.stage("checking the backup", expected.event_count))
    progress.stage("loading", manifest.event_count)
    await load(dsn, path, manifest, force=force, progress=progress)
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=2)
    try:
        progress.stage("checking the database", manifest.last_event_id)
        problems = await check_database(store, manifest, progress)
        if problems:
            raise RestoreError("the restored log differs from the backup: " + "; ".join(problems))
        await rebuild_sql(
            store, progress.stage("rebuilding the SQL read model", manifest.last_event_id)
        )
    finally:
        progress.done()
        await store.close()
    return manifest
