"""Background tasks of the service: each runs beside the requests, and one that fails says
so in the health status (GET /.well-known/status turns unhealthy) instead of leaving the
service serving stale answers silently — and is started again, after a pause that grows
while it keeps failing, so that one unforeseen error does not stop scheduling or
deployments until somebody restarts the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import attrs

logger = logging.getLogger(__name__)

#: Component name -> its problem ("" when fine), as the status reports it.
Health = dict[str, str]
#: Makes the task's work anew: a failed coroutine cannot be awaited again.
Work = Callable[[], Coroutine[Any, Any, None]]


@attrs.frozen
class Restarts:
    """When a failed task starts again: after `first` seconds, doubling up to `most` while
    each run fails within `steady` seconds; a run that lasts `steady` seconds clears the
    failure from the health status, and the next failure waits `first` again."""

    first: float = 1.0
    most: float = 60.0
    steady: float = 30.0


async def watched(name: str, work: Work, health: Health, restarts: Restarts = Restarts()) -> None:
    """Run `work()` until it returns; each failure is logged, recorded under `name` in
    `health`, and followed by a new run (see Restarts)."""
    loop = asyncio.get_running_loop()
    delay = restarts.first
    recovered: asyncio.TimerHandle | None = None
    while True:
        started = loop.time()
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if loop.time() - started >= restarts.steady:
                delay = restarts.first
            logger.exception("background task %s failed; starting it again in %g s", name, delay)
            problem = health[name] = f"failed: {exc!r}; starting again in {delay:g} s"
        finally:
            if recovered is not None:
                recovered.cancel()
        await asyncio.sleep(delay)
        delay = min(delay * 2, restarts.most)
        recovered = loop.call_later(restarts.steady, _clear, health, name, problem)


def _clear(health: Health, name: str, problem: str) -> None:
    """The failure is over: unless the task has said something else since."""
    if health.get(name) == problem:
        health[name] = ""


@contextlib.asynccontextmanager
async def background(
    name: str, work: Work, health: Health, restarts: Restarts = Restarts()
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `work()` as a watched task while the block runs; cancel it, and wait for it to
    end, when the block ends."""
    task = asyncio.create_task(watched(name, work, health, restarts), name=f"evenflow-{name}")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
