"""Fixtures for the reliability tests: an HTTP session, a PostgreSQL of the test's own (to stop
and start without disturbing other tests), and the figures the tests measure, printed at
the end of the run."""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from localpg import LocalPG, LocalPGError, ensure_database
from service.settings import Settings
from tests.reliability.service import AUTH, KEY, OLD_KEY, Service

#: (test, figure, value) measured by the tests of this run; see pytest_terminal_summary.
FIGURES: list[tuple[str, str, str]] = []


def report(request: pytest.FixtureRequest, figure: str, value: object) -> None:
    """Record a measured figure, shown in the summary at the end of the run."""
    FIGURES.append((request.node.name, figure, str(value)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for test, figure, value in FIGURES:
            terminalreporter.line(f"{figure}: {value}  ({test})")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session without connection limits (hundreds of requests in flight)."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as s:
        yield s


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A world-readable temporary folder (the service logs and keeps its data there)."""
    root = Path(tempfile.mkdtemp(prefix="reliability-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def own_pg() -> AsyncIterator[LocalPG]:
    """A PostgreSQL server of this test alone, with an `evenflow` database."""
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is set: there is no local server to stop and start")
    root = Path(tempfile.mkdtemp(prefix="pgfault-"))
    pg = LocalPG(root, fast=True)
    try:
        try:
            pg.start()
        except (LocalPGError, OSError) as e:
            if os.environ.get("REQUIRE_POSTGRES") == "1":
                pytest.fail(f"PostgreSQL is required but unavailable: {e}")
            pytest.skip(f"PostgreSQL unavailable: {e}")
        await ensure_database(pg.dsn(), "evenflow")
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def service(
    own_pg: LocalPG, workdir: Path, session: aiohttp.ClientSession
) -> AsyncIterator[Service]:
    """The service, in its own process, on `own_pg` (which the test may stop and start)."""
    running = Service(own_pg.dsn("evenflow"), workdir)
    try:
        await running.ready(session)
        yield running
    finally:
        running.stop()


@pytest.fixture
async def api(aiohttp_client: Any) -> Any:
    """The service on an in-memory log, in this process; a client with the key."""
    app = create_app(Settings(auth_keys=(KEY, OLD_KEY)), store=InMemoryEventStore())
    return await aiohttp_client(app, headers=AUTH)
