"""Background tasks: a failure is logged and reported in the health status, never silent, and
the task is started again; the report ends once a new run has lasted."""

import asyncio
import logging

import pytest

from service.tasks import Restarts, background, watched

#: Pauses short enough for a test (the service's are seconds).
QUICK = Restarts(first=0.01, most=0.04, steady=0.2)


class Flaky:
    """Work that fails its first `failures` runs at once, then runs until cancelled."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0
        self.started: list[float] = []
        self.steady = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        self.started.append(asyncio.get_running_loop().time())
        if self.runs <= self.failures:
            raise RuntimeError(f"bug {self.runs}")
        self.steady.set()
        await asyncio.Event().wait()


async def test_a_failing_task_is_reported_logged_and_started_again(
    caplog: pytest.LogCaptureFixture,
):
    """Each failure lands in health under the task's name, with its exception, and in the
    log; the task runs again after pauses that double up to their bound."""
    work = Flaky(failures=4)
    health: dict[str, str] = {}
    with caplog.at_level(logging.ERROR, logger="service.tasks"):
        async with background("worker", work, health, QUICK):
            async with asyncio.timeout(5):
                await work.steady.wait()
            assert health == {"worker": "failed: RuntimeError('bug 4'); starting again in 0.04 s"}
    assert work.runs == 5
    pauses = [b - a for a, b in zip(work.started, work.started[1:], strict=False)]
    wanted = [0.01, 0.02, 0.04, 0.04]  # doubling, up to `most`
    assert all(want * 0.9 <= p < 1 for p, want in zip(pauses, wanted, strict=True)), pauses
    assert caplog.text.count("background task worker failed; starting it again") == 4


async def test_a_run_that_lasts_clears_the_failure_from_health():
    """Once a new run has lasted `steady` seconds the status is healthy again."""
    work = Flaky(failures=1)
    health: dict[str, str] = {}
    async with background("worker", work, health, QUICK):
        await work.steady.wait()
        assert health["worker"].startswith("failed: RuntimeError('bug 1')")
        async with asyncio.timeout(5):
            while health["worker"]:
                await asyncio.sleep(0.01)
    assert health == {"worker": ""}


async def test_a_task_that_says_something_else_meanwhile_keeps_it():
    """The clearing leaves alone what the task itself wrote into health since."""

    async def says() -> None:
        if "worker" not in health:
            raise RuntimeError("bug")
        health["worker"] = "waiting for the database"
        await asyncio.Event().wait()

    health: dict[str, str] = {}
    async with background("worker", says, health, QUICK):
        await asyncio.sleep(QUICK.steady * 2)
        assert health == {"worker": "waiting for the database"}


async def test_a_task_ends_with_its_block_and_is_not_reported():
    """Leaving the block cancels the task and waits for it; a cancellation is no failure."""
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    health: dict[str, str] = {}
    async with background("idle", forever, health) as task:
        await started.wait()
        assert not task.done()
    assert task.cancelled()
    assert health == {}


async def test_a_block_that_ends_during_a_pause_ends_at_once():
    """Leaving the block while a failed task waits to start again cancels the pause."""
    work = Flaky(failures=10)
    health: dict[str, str] = {}
    async with asyncio.timeout(1):
        async with background("worker", work, health, Restarts(first=60)) as task:
            while not health:
                await asyncio.sleep(0.01)
    assert task.cancelled() and work.runs == 1


async def test_a_task_that_ends_well_leaves_health_as_it_was():
    """A task that returns records nothing, is not started again, and the block still ends
    cleanly."""
    runs = []

    async def short() -> None:
        runs.append(1)

    health = {"other": ""}
    await watched("short", short, health, QUICK)
    assert health == {"other": ""} and runs == [1]
