"""What the browser tests share: the service in a process of its own (restartable on its
port), Debian's chromium driven by Playwright, the API beside it, and screenshots."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from tests.processes import ROOT, free_port, serve_command, wait_listening

KEY = "dashboard-key"
AUTH = {"Authorization": aiohttp.encode_basic_auth("", KEY), "Content-Type": "application/json"}
CHROMIUM = "/usr/bin/chromium"
#: This machine has no network: without these Chromium's own connections are refused.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: Where the tests leave their screenshots (git-ignored); the best are copied into docs/.
SCREENSHOTS = ROOT / "build" / "dashboard-screenshots"


def have_browser() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which(CHROMIUM) is not None


class Service:
    """`serve` on `database` with the local scheduler, its data and artifacts under `root`;
    `restart()` starts it again on the same port."""

    def __init__(self, database: str, root: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.artifacts = root / "data" / "artifacts"
        unset = ("SCHEDULER", "PORT", "HOST", "AUTH_KEY", "DATABASE_URL")
        self.env = (
            {k: v for k, v in os.environ.items() if k not in unset}
            | {
                "DATABASE_URL": database,
                "AUTH_KEY": KEY,
                "EVENFLOW_DATA_DIR": str(root / "data"),
                "JOB_STOP_GRACE": "1",
                "LOG_LEVEL": "INFO",
            }
            | (env or {})
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with (self.root / "service.log").open("ab") as out:
            self.proc = subprocess.Popen(
                serve_command(self.port), cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_listening(self.proc, self.port, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return (self.root / "service.log").read_text(errors="replace")


async def call(
    session: aiohttp.ClientSession,
    service: Service,
    method: str,
    path: str,
    body: Any = None,
    key: str = KEY,
) -> Any:
    """The API with the key (the service's unless told); the answer's JSON (None when empty)."""
    headers = {**AUTH, "Authorization": aiohttp.encode_basic_auth("", key)}
    async with session.request(method, service.url + path, json=body, headers=headers) as r:
        text = await r.text()
        assert r.status < 300, f"{method} {path}: {r.status} {text}"
        return await r.json(content_type=None) if text else None


async def make_key(
    session: aiohttp.ClientSession,
    service: Service,
    name: str,
    scope: str,
    apps: list[str] | None = None,
) -> str:
    """A key made through the API (the admin HTTP resource), for `apps` only if given; its
    secret."""
    body: dict[str, Any] = {"name": name, "scope": scope}
    if apps is not None:
        body["apps"] = apps
    made = await call(session, service, "POST", "/keys", body)
    return str(made["secret"])


async def position(session: aiohttp.ClientSession, service: Service) -> int:
    """The log's position as the service answers from it (its Evenflow-Event-Id)."""
    async with session.get(service.url + "/apps", headers=AUTH) as r:
        return int(r.headers["Evenflow-Event-Id"])


async def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
