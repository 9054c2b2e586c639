"""The backup archive: the log as JSON Lines in a tar, in parts, with a manifest written last.

Layout, under one folder `evenflow-backup-YYYY-MM-DD_HHMMSS/` (Flynn names its backups so):

* `events/000001.jsonl`, `events/000002.jsonl`, ...: the log in id order, one event per
  line with every stored field. Concatenated in order they are "the log file".
* `manifest.json`: format and version, the first and last event id, the event count, the
  log's size and SHA-256, each part's own, and when the backup was taken.

Why parts: a tar member states its size in a header before its data, and the log's size is
unknown until the whole log has been read. Buffering the whole log (in memory or a spooled
temporary file) would delay the first byte by the whole dump; a second pass to measure it
would read the log twice. Cut into parts of a few MiB, the log streams in one pass with
memory bounded by one part, and the first part (kept small) leaves at once. The manifest
comes last and is written only after every part: an archive without it is incomplete, and
the restore tool refuses it.
"""

from __future__ import annotations

import hashlib
import tarfile
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

from eventstore.record import RecordedEvent

FORMAT = "evenflow-backup"
VERSION = 1
#: A part is cut when it holds this many bytes; the first one sooner, so that bytes flow at once.
PART_BYTES = 4 * 1024 * 1024
FIRST_PART_BYTES = 64 * 1024
MANIFEST = "manifest.json"
BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

# A line ends with `,"created_at":"<27 characters>"}`: the payload is what lies between
# `,"data":` and that suffix.
_DATA_KEY = b',"data":'
_TIME_KEY = b',"created_at":"'
_TIME_SUFFIX = _TIME_KEY + b"2006-01-02T15:04:05.000000Z" + b'"}'


class ArchiveError(ValueError):
    """The file is not a complete, intact Evenflow backup."""


def archive_name(created_at: datetime) -> str:
    """`evenflow-backup-YYYY-MM-DD_HHMMSS` (UTC), the folder inside and the file name's stem."""
    return f"evenflow-backup-{created_at.astimezone(UTC):%Y-%m-%d_%H%M%S}"


def format_created_at(moment: datetime) -> str:
    """Full microsecond precision in UTC, always 27 characters (the line format relies on it)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def encode_line(record: RecordedEvent) -> bytes:
    """One event as a JSON line; the payload is embedded byte for byte.

    `meta` (only when the event has one: a line without it is as older backups have it)
    is a JSON string holding the meta's text, so that `,"data":` can only be the payload's.
    """
    doc: dict[str, object] = {
        "id": record.id,
        "type": record.type,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "app_id": record.app_id,
        "op": record.op,
        "unique_id": record.unique_id,
    }
    if record.meta is not None:
        doc["meta"] = record.meta.decode()
    doc["data"] = orjson.Fragment(record.data)
    doc["created_at"] = format_created_at(record.created_at)
    return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)


def decode_line(line: bytes) -> RecordedEvent:
    """The event of one line, its payload bytes exactly as they were stored."""
    try:
        body = line.rstrip(b"\n")
        at = body.index(_DATA_KEY)  # the first: no earlier string can hold an unescaped quote
        head = orjson.loads(body[:at] + b"}")
        data = body[at + len(_DATA_KEY) : len(body) - len(_TIME_SUFFIX)]
        if body[len(body) - len(_TIME_SUFFIX) : -29] != _TIME_KEY:
            raise ValueError("created_at is not the last field")
        created_at = datetime.fromisoformat(body[-29:-2].decode())
        meta = head.get("meta")
        return RecordedEvent(
            head["id"],
            head["type"],
            head["object_type"],
            head["object_id"],
            head["app_id"],
            head["op"],
            head["unique_id"],
            data,
            created_at,
            None if meta is None else meta.encode(),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArchiveError(f"malformed event line: {line[:120]!r}") from exc


@attrs.frozen
class Part:
    """One `events/NNNNNN.jsonl` member."""

    name: str
    first_event_id: int
    last_event_id: int
    event_count: int
    bytes: int
    sha256: str


@attrs.frozen
class Manifest:
    """What the archive holds, enough to check a restore bit for bit."""

    created_at: str
    first_event_id: int | None
    last_event_id: int
    event_count: int
    log_bytes: int
    log_sha256: str
    parts: tuple[Part, ...]
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        doc = {"format": self.format, "version": self.version, **attrs.asdict(self)}
        doc["parts"] = [attrs.asdict(part) for part in self.parts]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        try:
            if doc.get("format") != FORMAT:
                raise ArchiveError(f"not an {FORMAT} manifest")
            if doc.get("version") != VERSION:
                raise ArchiveError(f"unsupported backup version {doc.get('version')!r}")
            parts = tuple(Part(**part) for part in doc["parts"])
            return cls(**{**doc, "parts": parts})
        except (KeyError, TypeError) as exc:
            raise ArchiveError(f"malformed manifest: {exc}") from exc


def tar_member(name: str, data: bytes, mtime: float) -> bytes:
    """A regular-file member: its header, its data, padding to the block size."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    header = info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
    return header + data + b"\0" * (-len(data) % BLOCK)


class ArchiveWriter:
    """Builds an archive from the events in id order; holds at most one part in memory."""

    def __init__(
        self,
        created_at: datetime,
        part_bytes: int | None = None,
        first_part_bytes: int | None = None,
    ) -> None:
        self.created_at = created_at
        self.root = archive_name(created_at)
        self.part_bytes = part_bytes or PART_BYTES
        self._limit = min(first_part_bytes or FIRST_PART_BYTES, self.part_bytes)
        self._lines: list[bytes] = []
        self._size = 0
        self._first = 0
        self._last = 0
        self._log = hashlib.sha256()
        self._log_bytes = 0
        self.count = 0
        self.first_event_id: int | None = None
        self.parts: list[Part] = []

    def add(self, record: RecordedEvent) -> bytes:
        """Take one event; returns archive bytes ready to send (b"" until a part is full)."""
        if record.id <= self._last:
            raise ValueError(f"event {record.id} after {self._last}: the log must be in id order")
        line = encode_line(record)
        if not self._lines:
            self._first = record.id
        if self.first_event_id is None:
            self.first_event_id = record.id
        self._lines.append(line)
        self._size += len(line)
        self._last = record.id
        self.count += 1
        if self._size >= self._limit:
            self._limit = self.part_bytes
            return self._cut()
        return b""

    def _cut(self) -> bytes:
        data = b"".join(self._lines)
        name = f"events/{len(self.parts) + 1:06d}.jsonl"
        part = Part(
            name,
            self._first,
            self._last,
            len(self._lines),
            len(data),
            hashlib.sha256(data).hexdigest(),
        )
        self.parts.append(part)
        self._log.update(data)
        self._log_bytes += len(data)
        self._lines, self._size = [], 0
        return tar_member(f"{self.root}/{name}", data, self.created_at.timestamp())

    def finish(self, last_event_id: int) -> bytes:
        """The last part, the manifest and the end of the archive."""
        tail = self._cut() if self._lines else b""
        if self.count and self._last != last_event_id:
            raise ValueError(f"the log ends at {self._last}, not at {last_event_id}")
        manifest = self.manifest(last_event_id)
        body = orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2) + b"\n"
        member = tar_member(f"{self.root}/{MANIFEST}", body, self.created_at.timestamp())
        return tail + member + END_OF_ARCHIVE

    def manifest(self, last_event_id: int) -> Manifest:
        return Manifest(
            created_at=format_created_at(self.created_at),
            first_event_id=self.first_event_id,
            last_event_id=last_event_id,
            event_count=self.count,
            log_bytes=self._log_bytes,
            log_sha256=self._log.hexdigest(),
            parts=tuple(self.parts),
        )
