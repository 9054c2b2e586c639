"""Running `podman`: every value one argument of its own (no shell), its environment ours.

Podman here runs without a daemon, as the service's user (root, for containers of other
uids). The global options fit it to the machine: the OCI runtime (`runc` by default: Debian's
`crun` refuses hybrid cgroup hierarchies), `cgroupfs` as the cgroup manager and a file as the
events log when systemd does not run the machine. Its environment is a fixed minimal one: no
variable of the service's, let alone of a job's, steers it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

#: The most of podman's complaint kept in a host error.
MAX_ERROR = 2000
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


class PodmanError(Exception):
    """A podman command failed; the message is its complaint."""


@attrs.frozen
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes

    def complaint(self) -> str:
        """Podman's last words on stderr (`Error: …`), for a host error."""
        text = self.stderr.decode(errors="replace").strip()
        errors = [line for line in text.splitlines() if line.startswith("Error: ")]
        return (errors[-1] if errors else text or f"exit status {self.returncode}")[-MAX_ERROR:]


def available(binary: str = "podman") -> bool:
    return shutil.which(binary, path=ENV["PATH"]) is not None


def global_options(runtime: str) -> list[str]:
    """The options every command gets on this machine."""
    options = [f"--runtime={runtime}"]
    if not Path("/run/systemd/system").is_dir():  # systemd does not run this machine
        options += ["--cgroup-manager=cgroupfs", "--events-backend=file"]
    return options


class Podman:
    def __init__(self, runtime: str = "runc", binary: str = "podman") -> None:
        self.binary = shutil.which(binary, path=ENV["PATH"]) or binary
        self.options = global_options(runtime)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *self.options, *args]

    async def run(
        self, *args: str, pass_fds: Sequence[int] = (), timeout: float | None = None
    ) -> Result:
        """Run `podman args…` to its end; its output, whatever its exit status.

        The output goes to files, not pipes: a process podman leaves behind (conmon) would
        hold a pipe open after podman's exit, and podman stalls on uvloop's socket pairs.
        """
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(*args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=ENV,
                cwd="/",
                pass_fds=pass_fds,
            )
            try:
                async with asyncio.timeout(timeout):
                    returncode = await proc.wait()
            except BaseException:  # cancelled, or too slow: it must not outlive the request
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                raise
            out.seek(0)
            err.seek(0)
            return Result(returncode, out.read(), err.read())

    async def check(self, *args: str, pass_fds: Sequence[int] = ()) -> bytes:
        """Run and return stdout; PodmanError with its complaint if it fails."""
        result = await self.run(*args, pass_fds=pass_fds)
        if result.returncode != 0:
            raise PodmanError(result.complaint())
        return result.stdout

    async def json(self, *args: str) -> Any:
        out = await self.check(*args)
        return orjson.loads(out) if out.strip() else None

    async def spawn(
        self, *args: str, stdin: int, stdout: int, stderr: int
    ) -> asyncio.subprocess.Process:
        """Start `podman args…` on these fds (for an attached container)."""
        return await asyncio.create_subprocess_exec(
            *self.argv(*args), stdin=stdin, stdout=stdout, stderr=stderr, env=ENV, cwd="/"
        )

    async def stream(self, *args: str) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader]:
        """Start `podman args…` and read its output line by line (`podman events`): through
        a pipe of ours (see `run`), which ends when the process does."""
        read_end, write_end = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(*args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=asyncio.subprocess.DEVNULL,
                env=ENV,
                cwd="/",
                start_new_session=True,  # a ^C of the service's terminal is for the service
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", 0)
        )
        return proc, reader


def _die_with_parent() -> None:
    """In the child: end with the service, even when it is killed (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)
