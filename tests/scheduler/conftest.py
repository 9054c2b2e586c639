"""Fixtures of the scheduler tests: a directory for jobs, the settings of a scheduling service,
a world of log, model and fake hosts."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.controller.conftest import AUTH_KEY
from tests.host.machine import reachable_dir
from tests.scheduler.world import World


@pytest.fixture
def root() -> Iterator[Path]:
    """Requested before `aiohttp_client`: the services stop before their jobs are killed."""
    with reachable_dir() as path:
        yield path


@pytest.fixture
def settings(root: Path) -> Settings:
    return Settings(
        auth_keys=(AUTH_KEY,), scheduler="local", data_dir=root, artifact_root=root,
        job_stop_grace=1.0,
        job_up_timeout=10.0, restart_backoff=(0.0, 0.3, 0.3), host_poll_interval=0.02,
        leader_retry=0.1,
    )  # fmt: skip


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """A fresh World, closed after the test."""
    w = World()
    await w.setup()
    yield w
    await w.close()
