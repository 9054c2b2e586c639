"""`python -m controller serve` as a process of its own, for the tests that need one."""

import socket
import sys
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
