"""The supervisor of one local job: `python shim.py <job dir>`.

The local host starts it in a new session (so the job and everything it starts share one
process group) with the job's log files as stdout and stderr. It runs the job as described in
`<job dir>/run.json` (limits, user, working directory, argv, env), writes `started` once the
command was executed, waits for it and writes how it ended to `exit.json`, so that a host
restarted meanwhile still learns the exit status of a process that is not its child.

Standard library only, and run by path: it must not depend on the service's packages.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import signal
import sys
import termios
from pathlib import Path
from typing import Any

#: What the shim stays alive through: stop signals sent to the job's group, and those a client
#: attached to the job may send it (host/attachment.py PASSED_SIGNALS).
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
            signal.SIGUSR2, signal.SIGALRM)  # fmt: skip
_LIMITS = {"nofile": resource.RLIMIT_NOFILE, "as": resource.RLIMIT_AS}


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a reader sees the whole file or none."""
    tmp = path.with_name(path.name + ".shim.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _own_pid() -> bytes:
    """The pid file's content, as host/jobdir.py writes it: pid and start time (from /proc)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        started = stat[stat.rindex(")") + 2 :].split()[19]
    except OSError:
        started = ""
    return f"{os.getpid()} {started}".encode()


def _limit(name: str, value: int) -> None:
    kind = _LIMITS[name]
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        # Above the hard limit without the privilege to raise it: as close as allowed.
        _, hard = resource.getrlimit(kind)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (soft, hard))


class _StartError(Exception):
    """The job could not be executed; the message is the job's host error."""


def _exec(run: dict[str, Any]) -> None:
    """In the forked child: become the job (never returns)."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    try:
        for name, value in run.get("limits", {}).items():
            _limit(name, int(value))
        if run.get("uid") is not None:
            os.setgroups([])
            os.setgid(int(run["gid"]))
            os.setuid(int(run["uid"]))
    except OSError as exc:
        raise _StartError(f"cannot apply the job's limits or user: {exc.strerror}") from exc
    try:
        os.chdir(run["cwd"])
    except OSError as exc:
        raise _StartError(f"cannot enter {run['cwd']}: {exc.strerror}") from exc
    argv = run["argv"]
    # Looked up as the job's user, in the job's PATH: a directory it cannot read is skipped.
    path = shutil.which(argv[0], path=run["env"].get("PATH", os.defpath))
    if path is None:
        raise _StartError(f"{argv[0]}: command not found")
    try:
        os.execve(path, argv, run["env"])
    except OSError as exc:
        raise _StartError(f"cannot execute {path}: {exc.strerror}") from exc


def _exit_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as shells say


def main(job_dir: Path) -> int:
    # The host writes it too, right after spawning; this covers a host that died in between.
    _write(job_dir / "pid", _own_pid())
    run = json.loads((job_dir / "run.json").read_bytes())
    if run.get("tty"):
        # stdin is the job's pseudo-terminal: it becomes the session's controlling terminal,
        # so that ^C and a hang-up reach the job's process group.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Stay alive through the stop signals sent to the group, to record how the job ended.
    for sig in _SIGNALS:
        signal.signal(sig, lambda *_: None)
    errors_r, errors_w = os.pipe()  # close-on-exec: EOF once the command is executed
    pid = os.fork()
    if pid == 0:
        try:
            os.close(errors_r)
            _exec(run)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, _StartError) else repr(exc)
            os.write(errors_w, message.encode()[:4000])
        os._exit(127)
    os.close(errors_w)
    error = b""
    while chunk := os.read(errors_r, 4096):
        error += chunk
    os.close(errors_r)
    if not error:
        _write(job_dir / "started", b"")
    _, status = os.waitpid(pid, 0)
    code = _exit_status(status)
    outcome = {"exit_status": code, "error": error.decode(errors="replace")}
    _write(job_dir / "exit.json", json.dumps(outcome).encode())
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
