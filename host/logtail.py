"""Tailing a job's log files into the app log store, line by line.

The job writes into files (opened in append mode), never into a pipe of the service: a job
keeps running, and keeps writing, while the service restarts. A file that grew past
`max_bytes` is emptied once read to its end (a few lines written in between may be lost: the
app log is lossy by design, like Flynn's log aggregator).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import attrs

from applog.store import LogLine, LogStore

#: A longer line is cut into pieces of this many bytes.
MAX_LINE = 64 * 1024
#: At most this much is read from one file per look, so that one chatty job cannot stall
#: the others.
READ_CHUNK = 1024 * 1024


class Tail:
    """Follows one log file of one job from `offset` on."""

    def __init__(self, path: Path, stream: str, *, from_end: bool, max_bytes: int) -> None:
        self.path = path
        self.stream = stream
        self.max_bytes = max_bytes
        self._fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        self.offset = os.fstat(self._fd).st_size if from_end else 0
        self._partial = b""

    def read(self) -> list[str]:
        """The complete lines written since the last look."""
        size = os.fstat(self._fd).st_size
        if size < self.offset:  # emptied (by us, below): start over
            self.offset = 0
        data = os.pread(self._fd, READ_CHUNK, self.offset)
        self.offset += len(data)
        if self.offset >= self.max_bytes and self.offset >= os.fstat(self._fd).st_size:
            os.truncate(self.path, 0)
            self.offset = 0
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        while len(self._partial) > MAX_LINE:  # no end in sight: let its start out
            chunks.append(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        return [
            piece.decode(errors="replace").removesuffix("\r")
            for chunk in chunks
            for piece in (chunk[i : i + MAX_LINE] for i in range(0, max(len(chunk), 1), MAX_LINE))
        ]

    def rest(self) -> list[str]:
        """Everything left, the last unterminated line included (the job has ended)."""
        lines = []
        while batch := self.read():
            lines += batch
        if self._partial:
            lines.append(self._partial.decode(errors="replace"))
            self._partial = b""
        return lines

    def close(self) -> None:
        os.close(self._fd)


class JobLog:
    """The two streams of one job, written to its app's log."""

    def __init__(
        self,
        store: LogStore,
        template: LogLine,
        files: dict[str, Path],
        *,
        from_end: bool,
        max_bytes: int,
    ) -> None:
        self._store = store
        self._template = template  # app, job, process type and host of every line
        self._tails = [
            Tail(path, stream, from_end=from_end, max_bytes=max_bytes)
            for stream, path in files.items()
        ]

    def pump(self, *, final: bool = False) -> None:
        """Copy the new lines into the log store (all that is left when `final`)."""
        for tail in self._tails:
            lines = tail.rest() if final else tail.read()
            at = datetime.now(UTC)
            for msg in lines:
                self._store.write(
                    attrs.evolve(self._template, msg=msg, timestamp=at, stream=tail.stream)
                )

    def close(self) -> None:
        for tail in self._tails:
            tail.close()
