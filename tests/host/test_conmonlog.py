"""Conmon's log files (Kubernetes' format) into the app log: streams, split lines, a file
started over in the old one's place."""

import os
from datetime import UTC, datetime
from pathlib import Path

from applog.store import LogLine, LogQuery, MemoryLogStore
from host.conmonlog import ContainerLog

APP = "00000000-0000-4000-8000-000000000001"
T = "2026-12-07T00:31:13.492333356+00:00"


def lines(logs: MemoryLogStore) -> list[tuple[str, str]]:
    found, _ = logs.recent(APP, None, LogQuery())
    return [(line.stream, line.msg) for line in found]


def tail(path: Path, logs: MemoryLogStore, *, from_end: bool = False) -> ContainerLog:
    template = LogLine(APP, "", datetime.now(UTC), job_id="h-1", host_id="h")
    return ContainerLog(path, logs, template, from_end=from_end)


def test_records_become_lines_of_their_stream_and_parts_are_joined(tmp_path: Path):
    """F records are lines; P records are parts of the next F's line; a record written in
    two pieces waits for its end; a missing file is no error."""
    path, logs = tmp_path / "ctr.log", MemoryLogStore()
    log = tail(path, logs)
    log.pump()
    path.write_text(f"{T} stdout F hello\n{T} stderr P par\n{T} stdout F world\n{T} std")
    log.pump()
    with path.open("a") as f:
        f.write(f"err F tial\n{T} stdout F \n")
    log.pump()
    assert lines(logs) == [("stdout", "hello"), ("stdout", "world"), ("stderr", "partial"),
                           ("stdout", "")]  # fmt: skip


def test_a_file_replaced_by_a_new_one_is_read_to_its_end_then_the_new_one(tmp_path: Path):
    """Conmon past its size limit writes a new file and renames it over the old one."""
    path, logs = tmp_path / "ctr.log", MemoryLogStore()
    path.write_text(f"{T} stdout F before\n")
    log = tail(path, logs, from_end=True)  # a recovered container: its past was logged
    with path.open("a") as f:
        f.write(f"{T} stdout F last of the old file\n")
    fresh = tmp_path / "ctr.log.tmp"
    fresh.write_text(f"{T} stdout F first of the new file\n")
    os.rename(fresh, path)
    log.pump(final=True)
    log.close()
    assert lines(logs) == [("stdout", "last of the old file"), ("stdout", "first of the new file")]
