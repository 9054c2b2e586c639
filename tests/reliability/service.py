"""`python -m controller serve` as a separate process, for the fault, limit and security tests:
start it, wait for it, kill it (-9) or stop it (SIGTERM), read its log, fds and memory."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.processes import ROOT, free_port, serve_command

KEY = "reliability-key"
OLD_KEY = "rotated-out-key"
AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY)}
JSON = {"Content-Type": "application/json"}


class Service:
    """`serve` on `dsn` (one process unless `workers` says more), in a process group of its
    own; its output goes to `<workdir>/service-<port>.log`."""

    def __init__(
        self,
        dsn: str,
        workdir: Path,
        env: dict[str, str] | None = None,
        *,
        scheme: str = "http",
        args: tuple[str, ...] = (),
        workers: int = 1,
    ) -> None:
        self.dsn = dsn
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.log_path = workdir / f"service-{self.port}.log"
        environment = os.environ | {
            "DATABASE_URL": dsn,
            "AUTH_KEY": f"{KEY},{OLD_KEY}",
            "LOG_LEVEL": "INFO",
            "SCHEDULER": "off",
            "EVENFLOW_DATA_DIR": str(workdir / "data"),
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                serve_command(self.port, *args, "--workers", str(workers)),
                cwd=ROOT,
                env=environment | (env or {}),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # kill() reaches every process of the service
            )

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        """Wait until the service answers its status healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the service exited:\n{self.log()}"
            try:
                async with session.get(
                    f"{self.url}/.well-known/status", headers=AUTH, ssl=False
                ) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"the service did not become ready:\n{self.log()}")

    def kill(self) -> None:
        """kill -9 of every process of the service at once, and reap it."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """End it however it is: SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


def client_ssl(cafile: Path) -> ssl.SSLContext:
    """A client context that trusts `cafile` (a self-signed certificate) and checks names."""
    context = ssl.create_default_context(cafile=str(cafile))
    return context


async def json_of(response: aiohttp.ClientResponse) -> Any:
    return await response.json(content_type=None)


class LocalProvider:
    """Base of the tests' resource providers: `async with` serves the routes a subclass adds
    (`add_routes`) on 127.0.0.1, and gives the provider URL (its `/db` path)."""

    server: TestServer | None = None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> str:
        app = web.Application()
        self.add_routes(app.router)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/db"))

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()
