"""A container's output, tailed from the log file its conmon writes, into the app log store.

Conmon writes Kubernetes' format, one line per chunk of output:
`<RFC 3339 time> <stdout|stderr> <F|P> <text>`, `P` for a part of a longer line whose next
parts follow. Past its size limit conmon starts a new file in the old one's place (write, then
rename): the tail reads the old file to its end and goes on with the new one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import attrs

from applog.store import LogLine, LogStore
from host.logtail import MAX_LINE, READ_CHUNK


class ContainerLog:
    """Follows one container's log file (which may not exist yet) from where it starts."""

    def __init__(self, path: Path, store: LogStore, template: LogLine, *, from_end: bool) -> None:
        self.path = path
        self._store = store
        self._template = template  # app, job, process type and host of every line
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._from_end = from_end
        self._partial = b""  # a record not ended by a newline yet
        self._parts: dict[str, str] = {}  # stream -> the P parts of a line so far
        self._open()  # now: where "the end" is, for `from_end`

    def pump(self, *, final: bool = False) -> None:
        """Copy the new lines into the log store."""
        for record in self._records(final):
            self._take(record)
        if final:
            for stream, text in self._parts.items():
                self._write(stream, text)
            self._parts.clear()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _records(self, final: bool) -> list[bytes]:
        data = b""
        if self._fd is None:
            self._open()
        while self._fd is not None:
            data += self._read()
            replaced = self._replaced()
            if not replaced:
                break
            self.close()  # read to its end: on with the file in its place
            self._from_end = False
            self._open()
        records = (self._partial + data).split(b"\n")
        self._partial = records.pop()
        if final and self._partial:
            records.append(self._partial)
            self._partial = b""
        return records

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return
        st = os.fstat(self._fd)
        self._inode = st.st_ino
        self._offset = st.st_size if self._from_end else 0

    def _read(self) -> bytes:
        assert self._fd is not None
        chunks = []
        while chunk := os.pread(self._fd, READ_CHUNK, self._offset):
            self._offset += len(chunk)
            chunks.append(chunk)
            if len(chunks) * READ_CHUNK >= 4 * READ_CHUNK:
                break  # one chatty container must not stall the others
        return b"".join(chunks)

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            return False

    def _take(self, record: bytes) -> None:
        _, _, rest = record.partition(b" ")
        stream, _, rest = rest.partition(b" ")
        tag, _, text = rest.partition(b" ")
        name = stream.decode(errors="replace")
        if name not in ("stdout", "stderr"):
            return
        so_far = self._parts.pop(name, "") + text.decode(errors="replace")
        if tag == b"P" and len(so_far) < MAX_LINE:
            self._parts[name] = so_far
            return
        self._write(name, so_far.removesuffix("\r"))

    def _write(self, stream: str, msg: str) -> None:
        self._store.write(
            attrs.evolve(self._template, msg=msg, timestamp=datetime.now(UTC), stream=stream)
        )
