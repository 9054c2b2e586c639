"""Where a replay reads the log from: the database's event store, or a backup file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from eventstore.record import ALL_EVENTS, EventFilter, RecordedEvent
from eventstore.store import PAGE_SIZE
from replay.archive import Manifest
from replay.reader import ArchiveReader, read_manifest


class ArchiveSource:
    """A backup file read as a log; each part is checked against the manifest as it ends."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.manifest: Manifest = read_manifest(path)

    async def last_id(self) -> int:
        return self.manifest.last_event_id

    async def read(
        self,
        after: int = 0,
        *,
        until: int | None = None,
        filter: EventFilter = ALL_EVENTS,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RecordedEvent]:
        for record in ArchiveReader(self.path, self.manifest):
            if until is not None and record.id > until:
                return
            if record.id > after and (filter.is_all or filter.matches(record)):
                yield record
