"""`python -m controller serve` as a process of its own, for the tests that need one."""

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: where `-m controller` is found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(port: int, *args: str) -> list[str]:
    """The command line of a service on 127.0.0.1:`port`, with `args` after."""
    return [sys.executable, "-m", "controller", "serve", "--host", "127.0.0.1",
            "--port", str(port), *args]  # fmt: skip


def wait_listening(
    proc: subprocess.Popen[bytes], port: int, log: Callable[[], str], timeout: float = 30
) -> None:
    """Return once the service `proc` accepts connections on `port`; fail with its `log` if
    it exits or does not listen within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the service did not listen\n{log()}")
