"""The local host's state on disk: one directory per job, enough to find its process again.

```
<state dir>/jobs/<job id>/
    job.json     what the host needs after a restart (app, type, ports)
    run.json     what the shim executes (argv, env, limits, user); root-only: env holds secrets
    pid          "<pid> <start time>" of the shim, whose process group is the job's
    started      written by the shim once the command was executed
    exit.json    written by the shim when the command ended: {"exit_status", "error"}
    stdout.log   the job's output, tailed into the app log store
    stderr.log
    work/        the working tree (the artifact), owned by the job's user
```
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import attrs

JOB_DIR_MODE = 0o711  # the job's user must traverse it to reach work/


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@attrs.frozen
class Record:
    """What the host remembers of a job (job.json)."""

    job_id: str
    app_id: str
    release_id: str
    process_type: str
    ports: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ports": list(self.ports)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Record:
        return cls(
            doc["job_id"], doc["app_id"], doc["release_id"], doc["process_type"],
            tuple(doc.get("ports") or ()),
        )  # fmt: skip


@attrs.frozen
class Exit:
    """How a job ended, as the shim recorded it (exit_status None: the shim was killed)."""

    exit_status: int | None
    error: str = ""
    started: bool = True


class JobDir:
    def __init__(self, root: Path, job_id: str) -> None:
        self.job_id = job_id
        self.path = root / job_id
        self.work = self.path / "work"
        self.stdout = self.path / "stdout.log"
        self.stderr = self.path / "stderr.log"

    def create(self, record: Record) -> None:
        self.path.mkdir(mode=JOB_DIR_MODE)
        os.chmod(self.path, JOB_DIR_MODE)  # whatever the umask
        write_atomically(self.path / "job.json", json.dumps(record.to_json()).encode())

    def record(self) -> Record | None:
        try:
            return Record.from_json(json.loads((self.path / "job.json").read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write_run(self, run: dict[str, Any]) -> None:
        write_atomically(self.path / "run.json", json.dumps(run).encode())

    def write_pid(self, pid: int) -> None:
        write_atomically(self.path / "pid", f"{pid} {start_time(pid) or ''}".encode())

    def pid(self) -> tuple[int, str] | None:
        try:
            pid, _, started = (self.path / "pid").read_text().partition(" ")
            return int(pid), started.strip()
        except (OSError, ValueError):
            return None

    @property
    def started(self) -> bool:
        return (self.path / "started").exists()

    def exit(self) -> Exit:
        try:
            doc = json.loads((self.path / "exit.json").read_bytes())
        except (OSError, ValueError):
            return Exit(None, "", self.started)
        error = str(doc.get("error") or "")
        return Exit(doc.get("exit_status"), error, started=not error)


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie.

    A pid alone may be reused by an unrelated process; the pair names one process. Without
    /proc (not Linux) it is "" while the process exists.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3 of stat), fields[19] the start time (field 22).
    return None if fields[0] in ("Z", "X") else fields[19]


def alive(pid: int, started: str) -> bool:
    """Whether the process `pid` that started at `started` still runs."""
    now = start_time(pid)
    return now is not None and (not started or not now or now == started)


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a job's whole process group; nothing if it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
