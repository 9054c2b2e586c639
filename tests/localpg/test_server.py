import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from localpg import LocalPG, LocalPGError, find_bindir

REPO = Path(__file__).resolve().parents[2]

# Starts a server, prints its pid, then waits to be killed. In "orphan" mode it skips the
# parent-death signal, so that the server outlives it as an older launcher's would.
OWNER = """
import sys, time
from pathlib import Path
import localpg.server as s
if sys.argv[2] == "orphan":
    s._die_with_parent = lambda: None
pg = s.LocalPG(Path(sys.argv[1]), fast=True)
pg.start()
print(pg.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def root() -> Iterator[Path]:
    try:
        find_bindir()
    except LocalPGError as e:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(str(e))
    # Not tmp_path: the fallback account could not enter the 0700 /tmp/pytest-of-root.
    path = Path(tempfile.mkdtemp(prefix="localpg-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # zombies wait for a slow init to reap them


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def start_owner(root: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(root), mode], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"the owner process failed: {line!r}"
    return proc, int(line)


async def test_cold_start_then_query(root: Path) -> None:
    """A first start creates the cluster, reachable only through a private Unix socket."""
    with LocalPG(root) as pg:
        assert pg.running
        assert pg.dsn("app") == f"postgresql://postgres@/app?host={pg.socket_dir}&port=5432"
        assert pg.socket_dir.stat().st_mode & 0o777 == 0o700
        conn = await asyncpg.connect(pg.dsn())
        try:
            assert await conn.fetchval("select 41 + 1") == 42
            assert await conn.fetchval("show listen_addresses") == ""
        finally:
            await conn.close()
    assert not pg.running
    assert (root / "postgres.log").exists()


async def test_stop_start_keeps_data(root: Path) -> None:
    """Data written before stop() is there after start() on the same data dir and DSN."""
    pg = LocalPG(root, fast=True)
    pg.start()
    try:
        dsn = pg.dsn()
        conn = await asyncpg.connect(dsn)
        await conn.execute("create table t (x int); insert into t values (7)")
        await conn.close()
        pg.stop()
        assert not pg.running
        pg.start()
        assert pg.dsn() == dsn
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("select x from t") == 7
        await conn.close()
    finally:
        pg.stop()


def test_second_instance_refused(root: Path) -> None:
    """A second LocalPG on a data dir whose server is running refuses to start."""
    with LocalPG(root, fast=True) as first:
        second = LocalPG(root, fast=True)
        with pytest.raises(LocalPGError, match="in use by PostgreSQL"):
            second.start()
        assert first.running
        assert not second.running


def test_sigkill_of_owner_stops_server(root: Path) -> None:
    """When the owning process is killed with SIGKILL, its server shuts down within seconds."""
    owner, server_pid = start_owner(root, "normal")
    assert alive(server_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert owner.stdout is not None
    owner.stdout.close()
    assert wait_gone(server_pid, 5)
    assert "fast shutdown request" in (root / "postgres.log").read_text()


def test_orphaned_server_is_stopped(root: Path) -> None:
    """A server left running by a dead owner (parent pid 1) is stopped and replaced."""
    owner, orphan_pid = start_owner(root, "orphan")
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert owner.stdout is not None
    owner.stdout.close()
    time.sleep(0.1)
    ppid = int(Path(f"/proc/{orphan_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    if ppid != 1:
        os.kill(orphan_pid, signal.SIGINT)
        pytest.skip(f"the orphan was adopted by a subreaper (pid {ppid}), not by init")
    with LocalPG(root, fast=True) as pg:
        assert not alive(orphan_pid)
        assert pg.pid != orphan_pid


@pytest.mark.parametrize("holder", ["dead", "unrelated"])
def test_stale_pid_file_is_cleared(root: Path, holder: str) -> None:
    """A postmaster.pid naming a dead or non-postgres process does not block the start."""
    with LocalPG(root, fast=True):
        pass
    other = subprocess.Popen(["sleep", "60"])
    if holder == "dead":
        other.kill()
        other.wait()
    pid_file = root / "data" / "postmaster.pid"
    pid_file.write_text(f"{other.pid}\n{root / 'data'}\n0\n5432\n\n\n0 0\nready   \n")
    try:
        with LocalPG(root, fast=True) as pg:
            assert pid_file.read_text().split()[0] == str(pg.pid)
    finally:
        other.kill()
        other.wait()
