"""Fixtures of the host tests: a directory the jobs' users can reach, a log store, a host."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from applog.store import MemoryLogStore
from host.local import LocalHost
from tests.host.local_jobs import new_host
from tests.host.machine import reachable_dir


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


@pytest.fixture
def logs() -> MemoryLogStore:
    return MemoryLogStore()


@pytest.fixture
async def host(root: Path, logs: MemoryLogStore) -> AsyncIterator[LocalHost]:
    h = new_host(root, logs)
    await h.recover()
    yield h
    await h.close()
