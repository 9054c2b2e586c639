"""`python -m controller serve` in a process of its own, with its default scheduler."""

import os
import signal
import subprocess
from pathlib import Path

from tests.processes import ROOT, free_port, serve_command, wait_listening

KEY = "served-key"


class Served:
    """The service on `database`, keeping its data (and the local host's state) in `data_dir`."""

    def __init__(
        self, database: str, data_dir: Path, output: Path, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = output
        unset = ("SCHEDULER", "PORT", "HOST", "AUTH_KEY", "DATABASE_URL")
        env = (
            {k: v for k, v in os.environ.items() if k not in unset}
            | {
                "DATABASE_URL": database,
                "AUTH_KEY": KEY,
                "EVENFLOW_DATA_DIR": str(data_dir),
                "JOB_STOP_GRACE": "2",
                "LOG_LEVEL": "INFO",
            }
            | (env or {})
        )
        args = serve_command(self.port)
        with output.open("ab") as out:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_listening(self.proc, self.port, self.log)

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        self.proc.kill()
        self.proc.wait(15)
