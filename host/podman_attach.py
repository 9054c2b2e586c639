"""An attached container: `podman start --attach` on pipes or a terminal the service holds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from host.attachment import PASSED_SIGNALS, LogLine, StdioAttachment, Stop, stdio_fds
from host.podman_cli import Podman


async def start_attached(
    podman: Podman, name: str, attachment: StdioAttachment, stop: Stop, log: LogLine
) -> asyncio.subprocess.Process:
    """Start the (created, `--interactive`) container `name` with its streams on the
    attachment's; the returned client ends when the container does."""
    fds, kept = stdio_fds(attachment.request)
    try:
        client = await podman.spawn(
            "start", "--attach", "--interactive", "--sig-proxy=false", name,
            stdin=fds[0], stdout=fds[1], stderr=fds[2],
        )  # fmt: skip
    except BaseException:
        for fd in kept:
            os.close(fd)
        raise
    finally:
        for fd in set(fds):
            os.close(fd)

    async def signal_job(signum: int) -> None:
        if signum in PASSED_SIGNALS and client.returncode is None:
            await podman.run("kill", f"--signal={signum}", name)

    def resized() -> None:  # podman reads its terminal's new size on SIGWINCH
        with contextlib.suppress(ProcessLookupError):
            client.send_signal(signal.SIGWINCH)

    attachment.bind(kept, signal=signal_job, stop=stop, after_resize=resized, log=log)
    return client
