"""Background tasks: a failure is logged and reported in the health status, never silent."""

import asyncio
import logging

import pytest

from service.tasks import background, watched


async def test_a_failing_task_is_reported_in_health_and_logged(caplog: pytest.LogCaptureFixture):
    """The failure lands in health under the task's name, with its exception, and in the log."""

    async def broken() -> None:
        raise RuntimeError("bug")

    health: dict[str, str] = {}
    with caplog.at_level(logging.ERROR, logger="service.tasks"):
        await watched("worker", broken(), health)
    assert health == {"worker": "failed: RuntimeError('bug')"}
    assert "background task worker failed" in caplog.text


async def test_a_task_ends_with_its_block_and_is_not_reported():
    """Leaving the block cancels the task and waits for it; a cancellation is no failure."""
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    health: dict[str, str] = {}
    async with background("idle", forever(), health) as task:
        await started.wait()
        assert not task.done()
    assert task.cancelled()
    assert health == {}


async def test_a_task_that_ends_well_leaves_health_as_it_was():
    """A task that returns records nothing, and the block still ends cleanly."""
    health = {"other": ""}
    async with background("short", asyncio.sleep(0), health) as task:
        await task
    assert health == {"other": ""}
