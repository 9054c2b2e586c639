"""`serve --workers N`: processes sharing one port, each following the log; the parent
restarts a worker that dies and stops them all when asked."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from service.supervisor import Supervisor
from tests.processes import ROOT, free_port, serve_command

pytestmark = pytest.mark.postgres

KEY = "workers-key"
AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY)}


def workers_of(parent: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == parent:
            found.add(int(stat.parent.name))
    return found


async def wait_until(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_two_workers_share_the_port_and_see_each_others_writes(make_database, tmp_path):
    dsn = await make_database()
    port = free_port()
    env = os.environ | {"DATABASE_URL": dsn, "AUTH_KEY": KEY, "SCHEDULER": "off",
                        "LOG_LEVEL": "WARNING", "EVENFLOW_DATA_DIR": str(tmp_path)}  # fmt: skip
    parent = subprocess.Popen(serve_command(port, "--workers", "2"), cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(url, headers=AUTH) as session:

            async def ready() -> bool:
                try:
                    async with session.get("/.well-known/status") as r:
                        return r.status == 200 and len(workers_of(parent.pid)) == 2
                except aiohttp.ClientError:
                    return False

            await wait_until(ready)
            first = workers_of(parent.pid)
            async with session.post("/apps", json={"name": "shared"}) as r:
                assert r.status == 200

            # New connections land on either worker: every one finds the app soon.
            async def everywhere() -> bool:
                for _ in range(12):
                    connector = aiohttp.TCPConnector(force_close=True)
                    async with (
                        aiohttp.ClientSession(url, headers=AUTH, connector=connector) as s,
                        s.get("/apps/shared") as r,
                    ):
                        if r.status != 200:
                            return False
                return True

            await wait_until(everywhere, timeout=5)

            victim = min(first)
            os.kill(victim, signal.SIGKILL)

            async def replaced() -> bool:
                now = workers_of(parent.pid)
                return len(now) == 2 and victim not in now and await ready()

            await wait_until(replaced)
            await wait_until(everywhere, timeout=10)  # the new worker folded the log
    finally:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) == 0
    assert workers_of(parent.pid) == set()


def test_the_supervisor_gives_up_on_workers_that_cannot_start(monkeypatch):
    """A worker that keeps exiting at once (a port in use, a bad setting) ends the parent
    with an error instead of restarting forever."""
    monkeypatch.setattr("service.supervisor.RESTART_MAX", 0.0)
    monkeypatch.setattr("service.supervisor.POLL", 0.01)
    supervisor = Supervisor(2, [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ), 5)
    assert supervisor.run() == 1
