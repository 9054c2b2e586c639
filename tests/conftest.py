"""PostgreSQL fixtures: one server per session, one fresh database per test.

* `pg_dsn` (session): admin DSN of `TEST_DATABASE_URL` (needs CREATEDB) if set, else of a
  throwaway local server (fsync off) started for the session.
* `local_pg` (session): that local server itself, for tests that stop and restart it.
* `own_pg`: a local server of one test alone, for tests that reconfigure, stop or hang it.
* `database_url`: DSN of a fresh database cloned from the session's template, whose schema
  `tests.schema_setup.prepare_template` builds; dropped after the test.
* `make_database`: an async factory of more such databases, for tests that need several.
* `log_backend` (memory, postgres): runs a test on each backend of the log; None for the
  in-memory one, else `make_database` (open it with `tests.backends.open_log`).
* `store`: a fresh, empty log of each backend, closed after the test.

Without PostgreSQL these tests are skipped, unless REQUIRE_POSTGRES=1 makes them fail.
"""

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from eventstore.store import EventStore
from localpg import LocalPG, LocalPGError
from tests.backends import MakeDatabase, open_log
from tests.schema_setup import prepare_template

_counter = itertools.count()


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointing at database `name` instead (host, user and options unchanged)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
def own_pg() -> Iterator[LocalPG]:
    """A local server of this test alone (it may be reconfigured, stopped, hung)."""
    with (
        tempfile.TemporaryDirectory(prefix="pgown-") as root,
        LocalPG(Path(root), fast=True) as pg,
    ):
        yield pg


@pytest.fixture(scope="session")
def local_pg() -> Iterator[LocalPG]:
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is set: there is no local server to control")
    # Its own mkdtemp folder: the 0700 /tmp/pytest-of-root would be out of reach of the
    # fallback account used where user namespaces are refused.
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))
    try:
        try:
            pg = LocalPG(root, fast=True)
            pg.start()
        except (LocalPGError, OSError) as e:
            _unavailable(str(e))
        try:
            yield pg
        finally:
            pg.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_dsn(request: pytest.FixtureRequest) -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    pg: LocalPG = request.getfixturevalue("local_pg")
    return pg.dsn()


async def _drop_template(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f"alter database {_quote(name)} is_template false")
    await admin.execute(f"drop database {_quote(name)} with (force)")


async def _build_template(pg_dsn: str, name: str) -> None:
    try:
        admin = await asyncpg.connect(pg_dsn)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        _unavailable(f"cannot connect to the test server: {e!r}")
    try:
        if await admin.fetchval("select 1 from pg_database where datname = $1", name):
            await _drop_template(admin, name)  # left behind by an earlier run (same pid)
        await admin.execute(f"create database {_quote(name)}")
        try:
            await prepare_template(with_database(pg_dsn, name))
        except BaseException:
            await admin.execute(f"drop database {_quote(name)} with (force)")
            raise
        # Nobody (autovacuum included) may be connected to a database being copied.
        await admin.execute(
            f"alter database {_quote(name)} is_template true allow_connections false"
        )
    finally:
        await admin.close()


async def _drop_template_at(pg_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(pg_dsn)
    try:
        await _drop_template(admin, name)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def template_db(pg_dsn: str) -> Iterator[str]:
    """Name of the template database that every test database is cloned from."""
    name = f"evenflow_tmpl_{os.getpid()}"  # per process: a shared server may serve several
    asyncio.run(_build_template(pg_dsn, name))
    yield name
    # Matters on a shared TEST_DATABASE_URL server; a throwaway one may be gone already.
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        asyncio.run(_drop_template_at(pg_dsn, name))


@pytest_asyncio.fixture
async def make_database(
    pg_dsn: str, template_db: str
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """An async factory: each call returns the DSN of a new database cloned from the template."""
    names: list[str] = []

    async def make() -> str:
        name = f"t_{os.getpid()}_{next(_counter)}"
        admin = await asyncpg.connect(pg_dsn)
        try:
            try:
                await admin.execute(
                    f"create database {_quote(name)} template {_quote(template_db)}"
                )
            except asyncpg.DuplicateDatabaseError:  # left behind by an earlier run (same pid)
                await admin.execute(f"drop database {_quote(name)} with (force)")
                await admin.execute(
                    f"create database {_quote(name)} template {_quote(template_db)}"
                )
        finally:
            await admin.close()
        names.append(name)
        return with_database(pg_dsn, name)

    yield make
    if names:
        admin = await asyncpg.connect(pg_dsn)
        try:
            for name in names:
                await admin.execute(f"drop database if exists {_quote(name)} with (force)")
        finally:
            await admin.close()


@pytest_asyncio.fixture
async def database_url(make_database: Callable[[], Awaitable[str]]) -> str:
    """DSN of a fresh database for this test, with the template's schema; dropped afterwards."""
    return await make_database()


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_backend(request: pytest.FixtureRequest) -> MakeDatabase | None:
    """None for the in-memory log, else the factory of fresh Postgres databases."""
    # Resolved here, outside the event loop, because the session's Postgres fixtures are sync.
    if request.param == "postgres":
        return request.getfixturevalue("make_database")  # type: ignore[no-any-return]
    return None


@pytest.fixture
async def store(log_backend: MakeDatabase | None) -> AsyncIterator[EventStore]:
    """A fresh, empty log of each backend, closed after the test."""
    log = await open_log(log_backend)
    yield log
    await log.close()
