"""`serve` without DATABASE_URL: an embedded PostgreSQL that lives and dies with the service."""

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.processes import ROOT, free_port, serve_command

pytestmark = pytest.mark.postgres


def postgres_pids(data_dir: Path) -> list[int]:
    """Pids of postgres servers whose command line names `data_dir`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"postgres") and str(data_dir).encode() in b" ".join(args):
            found.append(int(cmdline.parent.name))
    return found


async def wait_status(url: str, key: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                auth = {"Authorization": aiohttp.encode_basic_auth("", key)}
                async with session.get(f"{url}/.well-known/status", headers=auth) as r:
                    if r.status == 200:
                        answer: dict = await r.json()
                        return answer
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the service did not become ready")


async def test_kill_9_of_the_service_stops_its_embedded_postgres_and_data_persists(tmp_path: Path):
    """The embedded server starts with the service, keeps its data, and dies with a kill -9."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AUTH_KEY")}
    env |= {
        "LOCALPG_DIR": str(tmp_path / "pg"),
        "EVENFLOW_DATA_DIR": str(tmp_path / "data"),
        "SCHEDULER": "off",
        "LOG_LEVEL": "WARNING",
    }
    url = f"http://127.0.0.1:{port}"
    for round_ in range(2):
        proc = subprocess.Popen(
            serve_command(port),
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            key = None
            for _ in range(600):
                key_file = tmp_path / "data" / "auth_key"
                if key_file.exists() and key_file.read_text().strip():
                    key = key_file.read_text().strip()
                    break
                await asyncio.sleep(0.05)
            assert key, "a key is generated and kept in the data folder"
            status = await wait_status(url, key)
            assert status["data"]["status"] == "healthy"
            auth = {"Authorization": aiohttp.encode_basic_auth("", key)}
            async with aiohttp.ClientSession(headers=auth) as session:
                if round_ == 0:
                    async with session.post(f"{url}/apps", json={"name": "kept"}) as r:
                        assert r.status == 200
                else:  # the second life finds the first one's data
                    async with session.get(f"{url}/apps/kept") as r:
                        assert r.status == 200
            assert postgres_pids(tmp_path / "pg"), "the embedded server runs"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 10
        while postgres_pids(tmp_path / "pg") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert postgres_pids(tmp_path / "pg") == [], "the server outlived a kill -9 of the service"
