"""`podman events`, kept running: the moment a container of the host dies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson

from host.containers import LABEL
from host.podman_cli import Podman


class DeathWatch:
    """Calls `died(name)` for each container of `home` that dies (a missed one is caught by
    the host's periodic `podman ps`)."""

    def __init__(self, podman: Podman, home: str, died: Callable[[str], None]) -> None:
        self._podman, self._home, self._died = podman, home, died
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._end()

    async def _watch(self) -> None:
        self._process, lines = await self._podman.stream(
            "events", "--format=json", "--filter=type=container", "--filter=event=died",
            f"--filter=label={LABEL}.home={self._home}",
        )  # fmt: skip
        try:
            while line := await lines.readline():
                with contextlib.suppress(ValueError):
                    name = orjson.loads(line).get("Name")
                    if isinstance(name, str):
                        self._died(name)
        finally:
            await self._end()

    async def _end(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
