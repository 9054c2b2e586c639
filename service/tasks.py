"""Background tasks of the service: each runs beside the requests, and one that fails says
so in the health status (GET /.well-known/status turns unhealthy) instead of leaving the
service serving stale answers silently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

#: Component name -> its problem ("" when fine), as the status reports it.
Health = dict[str, str]


async def watched(name: str, work: Coroutine[Any, Any, None], health: Health) -> None:
    """Run `work`; if it fails, log it and record the failure under `name` in `health`."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.exception("background task %s failed", name)
        health[name] = f"failed: {exc!r}"


@contextlib.asynccontextmanager
async def background(
    name: str, work: Coroutine[Any, Any, None], health: Health
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `work` as a watched task while the block runs; cancel it, and wait for it to
    end, when the block ends."""
    task = asyncio.create_task(watched(name, work, health), name=f"evenflow-{name}")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
