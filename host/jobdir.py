"""The local host's state on disk: one directory per job, enough to find its process again.

```
<state dir>/jobs/<uuid>/
    job.json     what the host needs after a restart (app, type, ports, uid)
    run.json     what the shim executes (argv, env, limits, user); root-only: env holds secrets
    pid          "<pid> <start time>" of the shim, whose process group is the job's
    started      written by the shim once the command was executed
    exit.json    written by the shim when the command ended: {"exit_status", "error"}
    stdout.log   the job's output, tailed into the app log store
    stderr.log
    work/        the working tree (the artifact), owned by the job's user
```

A directory is named by the uuid of the job's id, never by the id itself: the id comes from a
client. Older versions named it by the whole job id; such a directory is still adopted (see
`belongs_to`). The host only creates a directory that does not exist yet (`mkdir` refuses a
link left in its place) and only deletes a real directory directly under its root.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import stat
from pathlib import Path
from typing import Any

import attrs

from host.inputs import JOB_ID_SHAPE, parse_job_id

logger = logging.getLogger(__name__)

JOB_DIR_MODE = 0o711  # the job's user must traverse it to reach work/


class UnsafePathError(Exception):
    """A path the host refuses to make or touch (the message says why)."""


def job_path(root: Path, job_id: str) -> Path:
    """The directory of job `job_id` under `root` (resolved): `root/<uuid of the id>`."""
    parsed = parse_job_id(job_id)
    if parsed is None:
        raise UnsafePathError(f"the job id is not {JOB_ID_SHAPE}")
    path = root / parsed.uuid
    # The uuid's shape already rules out separators and dot entries; this holds whatever
    # changes there, and refuses a link planted in the directory's place.
    if path.parent != root or os.path.realpath(path) != str(path):
        raise UnsafePathError(f"{path} is not a plain entry of {root}")
    return path


def belongs_to(name: str, job_id: str) -> bool:
    """Whether a directory called `name` may hold job `job_id`: named by its uuid, or by the
    whole id as older versions named it."""
    parsed = parse_job_id(job_id)
    return name == (parsed.uuid if parsed is not None else None) or name == job_id


def job_dirs(root: Path) -> list[tuple[JobDir, Record]]:
    """The job directories under `root`, each with its record, one per job. One the host
    stopped while creating (no record: nothing ran) is removed; a link, a file or a
    directory holding another job than its name says is left alone, with a warning."""
    found: dict[str, tuple[JobDir, Record]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        if not entry.is_dir(follow_symlinks=False):
            logger.warning("local host: %s is not a job directory; left alone", path)
            continue
        jobdir = JobDir(path)
        record = jobdir.record()
        if record is None:
            remove(root, path)
        elif not belongs_to(entry.name, record.job_id) or record.job_id in found:
            logger.warning("local host: %s does not hold job %s; left alone", path, record.job_id)
        else:
            found[record.job_id] = (jobdir, record)
    return list(found.values())


def remove(root: Path, path: Path) -> None:
    """Delete a job's directory: a real directory directly under `root`, never a link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if path.parent != root or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is not a directory of {root}: left alone")
    shutil.rmtree(path, ignore_errors=True)  # it does not follow links inside the tree


def write_atomically(path: Path, data: bytes, mode: int = 0o600, *, sync: bool = False) -> None:
    """Replace `path` by a file holding `data`; with `sync`, on disk before it returns."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if sync:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@attrs.frozen
class Record:
    """What the host remembers of a job (job.json)."""

    job_id: str
    app_id: str
    release_id: str
    process_type: str
    ports: tuple[int, ...] = ()
    uid: int | None = None  # the job's user; None: the service's own (or an older version's)

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ports": list(self.ports)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Record:
        uid = doc.get("uid")
        return cls(
            doc["job_id"], doc["app_id"], doc["release_id"], doc["process_type"],
            tuple(doc.get("ports") or ()), uid if isinstance(uid, int) else None,
        )  # fmt: skip


@attrs.frozen
class Exit:
    """How a job ended, as the shim recorded it (exit_status None: the shim was killed)."""

    exit_status: int | None
    error: str = ""
    started: bool = True


class JobDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.work = self.path / "work"
        self.stdout = self.path / "stdout.log"
        self.stderr = self.path / "stderr.log"

    def create(self, record: Record) -> None:
        try:
            os.mkdir(self.path, JOB_DIR_MODE)  # never an entry that exists, a link included
        except FileExistsError:
            raise UnsafePathError(
                f"{self.path} exists already: another job has this uuid"
            ) from None
        os.chmod(self.path, JOB_DIR_MODE)  # whatever the umask
        write_atomically(self.path / "job.json", json.dumps(record.to_json()).encode())

    def make_work(self, owner: tuple[int, int] | None) -> None:
        """The empty working tree, the job's user's own: no other uid enters it."""
        os.mkdir(self.work, 0o700)
        if owner is not None:
            os.chown(self.work, *owner, follow_symlinks=False)

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
