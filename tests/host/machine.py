"""Helpers for tests that run real jobs: a state directory the jobs' user can reach, the
processes a local host left running, and a clean-up that kills them."""

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from host.jobdir import JobDir, alive

#: A tiny web app: says which job it is on GET /, and logs a line on start.
WEB_PY = """\
import http.server, os, sys

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {os.environ['FLYNN_JOB_ID']}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

port = int(os.environ["PORT"])
print(f"web listening on {port}", flush=True)
print("ready", file=sys.stderr, flush=True)
http.server.ThreadingHTTPServer(("", port), Hello).serve_forever()
"""


@contextlib.contextmanager
def reachable_dir(prefix: str = "evenflow-") -> Iterator[Path]:
    """A fresh directory the jobs' user may traverse; every job left under it is killed and
    the directory removed at the end."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        kill_all(root)
        shutil.rmtree(root, ignore_errors=True)


def running(state_dir: Path) -> dict[str, int]:
    """Job id -> pid of every job process (its shim) still running under `state_dir`."""
    jobs = state_dir / "jobs"
    found: dict[str, int] = {}
    for path in sorted(jobs.iterdir()) if jobs.is_dir() else ():
        job = JobDir(path)
        pid, record = job.pid(), job.record()
        if pid is not None and record is not None and alive(*pid):
            found[record.job_id] = pid[0]
    return found


def kill_all(root: Path) -> None:
    """SIGKILL every job's process group found under `root` (any depth of state dirs)."""
    for pid_file in root.rglob("jobs/*/pid"):
        pid = JobDir(pid_file.parent).pid()
        if pid is not None and alive(*pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid[0], signal.SIGKILL)


def make_artifact(root: Path, **files: str) -> Path:
    """A directory holding `files` (name -> text), to serve as a `file` artifact."""
    path = root / "artifact"
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def group(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (zombies left out: a container's init may
    not reap them)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(stat.parent.name))
    return members
