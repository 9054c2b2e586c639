"""Reading a backup archive back: every event, checked against the manifest as it goes."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from eventstore.record import RecordedEvent
from replay.archive import MANIFEST, ArchiveError, Manifest, Part, decode_line
from replay.progress import Progress


class ArchiveReader:
    """Every event of an archive, in order, checked against its manifest as it goes.

    Iterating raises ArchiveError when the archive is truncated, has no manifest, or any
    count, id or hash differs from the manifest; `manifest` is set once all checked out.
    The last events come out before the manifest is read: a caller that must not act on an
    unverified archive runs `verify_archive` first.
    """

    def __init__(self, path: Path | str | IO[bytes], expected: Manifest | None = None) -> None:
        self.path = path
        # With the manifest known up front (read_manifest), each part is checked as soon as
        # it ends, not only at the end of the archive.
        self.expected = expected
        self.manifest: Manifest | None = None

    def __iter__(self) -> Iterator[RecordedEvent]:
        path = self.path
        fileobj = path if not isinstance(path, str | Path) else open(path, "rb")  # noqa: SIM115
        try:
            yield from self._read(fileobj)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"unreadable archive: {exc}") from exc
        finally:
            if fileobj is not path:
                fileobj.close()

    def _read(self, fileobj: IO[bytes]) -> Iterator[RecordedEvent]:
        seen: list[Part] = []
        log, log_bytes, last = hashlib.sha256(), 0, 0
        manifest: Manifest | None = None
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                if manifest is not None:
                    raise ArchiveError(f"unexpected member after the manifest: {member.name}")
                name = member.name.partition("/")[2]
                content = tar.extractfile(member)
                if content is None:
                    continue  # a folder
                if name == MANIFEST:
                    manifest = Manifest.from_json(orjson.loads(content.read()))
                    continue
                if not name.startswith("events/"):
                    raise ArchiveError(f"unexpected member {member.name}")
                part, first, count = hashlib.sha256(), 0, 0
                for line in content:
                    record = decode_line(line)
                    if record.id <= last:
                        raise ArchiveError(f"event {record.id} after {last}: ids out of order")
                    first, last, count = first or record.id, record.id, count + 1
                    part.update(line)
                    log.update(line)
                    log_bytes += len(line)
                    yield record
                seen.append(Part(name, first, last, count, member.size, part.hexdigest()))
                self._check_part(seen)
        if manifest is None:
            raise ArchiveError("the archive has no manifest: the backup is incomplete")
        _check(manifest, seen, log.hexdigest(), log_bytes, last)
        self.manifest = manifest

    def _check_part(self, seen: list[Part]) -> None:
        if self.expected is None:
            return
        parts = self.expected.parts
        if len(seen) > len(parts) or parts[len(seen) - 1] != seen[-1]:
            raise ArchiveError(f"part {seen[-1].name} does not match the manifest")


def _check(manifest: Manifest, seen: list[Part], sha256: str, size: int, last: int) -> None:
    problems = []
    if list(manifest.parts) != seen:
        problems.append("the parts differ from the manifest's list")
    if manifest.log_sha256 != sha256:
        problems.append(f"log sha256 {sha256} != manifest {manifest.log_sha256}")
    if manifest.log_bytes != size:
        problems.append(f"log size {size} != manifest {manifest.log_bytes}")
    count = sum(part.event_count for part in seen)
    if manifest.event_count != count:
        problems.append(f"{count} events != manifest {manifest.event_count}")
    first = seen[0].first_event_id if seen else None
    if manifest.first_event_id != first or (seen and manifest.last_event_id != last):
        problems.append("first or last event id differs from the manifest")
    if problems:
        raise ArchiveError("the archive does not match its manifest: " + "; ".join(problems))


def verify_archive(path: Path | str, progress: Progress | None = None) -> Manifest:
    """Read the whole archive, check it, and return its manifest."""
    reader = ArchiveReader(path)
    for _ in reader:
        if progress is not None:
            progress.add()
    assert reader.manifest is not None
    return reader.manifest


def read_manifest(path: Path | str) -> Manifest:
    """The manifest alone, found by skipping over the parts; the log is not checked."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.name.endswith("/" + MANIFEST)]
            content = tar.extractfile(members[-1]) if members else None
            if content is None:
                raise ArchiveError("the archive has no manifest: the backup is incomplete")
            return Manifest.from_json(orjson.loads(content.read()))
    except (tarfile.TarError, EOFError, OSError, orjson.JSONDecodeError) as exc:
        raise ArchiveError(f"unreadable archive: {exc}") from exc
