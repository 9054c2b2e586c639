"""`serve --workers N`: N service processes on one port, and the parent that keeps them up.

Each worker is a whole service (`python -m controller serve --worker`): its own read model
following the log, its own dispatcher appending with the head it folded, so writes through
any worker are serialized by the log's ordering (a worker whose append finds the log moved
catches up and decides again) and every worker sees every write once it has followed the
log there (LISTEN/NOTIFY: milliseconds). The kernel spreads connections over the workers
(SO_REUSEPORT: each binds the port itself).

The parent serves nothing. It resolved the settings the workers share (the generated
AUTH_KEY, the embedded PostgreSQL's URL), starts the workers, forwards SIGTERM/SIGINT to
them, restarts one that dies, and exits once they have stopped. Workers get SIGTERM if the
parent dies, even by SIGKILL (PR_SET_PDEATHSIG), and leave at once if their shutdown then
takes too long (the database the parent ran is gone too), so none outlives it holding the
port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger("evenflow.workers")

#: The worker's index (0..N-1), in its environment.
WORKER_VARIABLE = "EVENFLOW_WORKER"
#: How often the parent looks at its workers.
POLL = 0.1
#: A worker that exits sooner than this after its start "failed to start": restarting it at
#: once would loop; the delay doubles up to RESTART_MAX, and after GIVE_UP such exits in a
#: row the parent stops everything and exits with an error (a port in use, a bad setting).
EARLY_EXIT = 10.0
RESTART_MAX = 30.0
GIVE_UP = 5
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM when the parent dies, whatever kills it."""
    with_libc = ctypes.CDLL(None, use_errno=True)
    with_libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    """Runs `count` workers until asked to stop; see the module's docstring."""

    def __init__(
        self,
        count: int,
        argv: list[str],
        env: dict[str, str],
        grace: float,
        spawn: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
    ) -> None:
        self.count = count
        self.argv = argv
        self.env = env
        self.grace = grace  # seconds the workers get to stop before SIGKILL
        self._spawn = spawn
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self._started: dict[int, float] = {}
        self._early: dict[int, int] = {}  # early exits in a row, by worker
        self._due: dict[int, float] = {}  # worker -> when to restart it
        self._stopping: float | None = None  # when stopping began
        self.failed = False

    def start(self, index: int) -> None:
        env = self.env | {WORKER_VARIABLE: str(index)}
        self.workers[index] = self._spawn(self.argv, env=env, preexec_fn=_die_with_parent)
        self._started[index] = time.monotonic()

    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        """Ask every worker to stop (a signal handler too)."""
        if self._stopping is None:
            self._stopping = time.monotonic()
            logger.info("stopping %d workers", len(self.workers))
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Start the workers and supervise them; the exit status for the parent."""
        previous = {
            signum: signal.signal(signum, self.stop) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(self.count):
                self.start(index)
            logger.info("%d workers started", self.count)
            while self.workers or (self._due and self._stopping is None):
                self._reap()
                self._restart_due()
                if self._stopping is not None and time.monotonic() - self._stopping > self.grace:
                    for proc in self.workers.values():
                        proc.kill()
                time.sleep(POLL)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if self.failed else 0

    def _reap(self) -> None:
        for index, proc in list(self.workers.items()):
            status = proc.poll()
            if status is None:
                continue
            del self.workers[index]
            if self._stopping is not None:
                continue
            lived = time.monotonic() - self._started[index]
            early = self._early.get(index, 0) + 1 if lived < EARLY_EXIT else 0
            self._early[index] = early
            if early >= GIVE_UP:
                logger.error("worker %d keeps exiting (status %s); giving up", index, status)
                self.failed = True
                self.stop()
                continue
            delay = min(RESTART_MAX, 0.5 * 2**early) if early else 0.0
            logger.warning(
                "worker %d exited (status %s); restarting in %.1f s", index, status, delay
            )
            self._due[index] = time.monotonic() + delay

    def _restart_due(self) -> None:
        if self._stopping is not None:
            self._due.clear()
            return
        now = time.monotonic()
        for index, at in list(self._due.items()):
            if at <= now:
                del self._due[index]
                self.start(index)


def exit_when_orphaned(grace: float) -> None:
    """In a worker: end the process `grace` seconds after its parent is gone (the SIGTERM
    of PR_SET_PDEATHSIG came then; a shutdown that waits for a database that went away
    with the parent must not keep the port)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watch, name="evenflow-orphan-watch", daemon=True).start()


def worker_argv(host: str, port: int) -> list[str]:
    """The command line of one worker."""
    return [sys.executable, "-m", "controller", "serve", "--worker", "--host", host,
            "--port", str(port)]  # fmt: skip


def worker_index() -> int | None:
    """This process's index among the workers, None when it is not one."""
    value = os.environ.get(WORKER_VARIABLE)
    return int(value) if value and value.isdigit() else None
