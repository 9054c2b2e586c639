"""Backup, restore into a fresh database, verify: the restored service answers as the source."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from controller.app import create_app
from eventstore.postgres import PostgresEventStore
from projections.sql import SqlReadModel
from replay.archive import ArchiveError
from replay.restore import RestoreError, restore
from replay.source import ArchiveSource
from replay.verify import Service, verify_read_model, verify_service
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY
from tests.replay.scenario import build_history, run_cli

pytestmark = pytest.mark.postgres
JSON = {"Accept": "application/json"}


async def serve(aiohttp_client: Any, settings: Settings, dsn: str) -> tuple[TestClient, Any]:
    store = await PostgresEventStore.open(dsn)
    return await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS), store


async def api_paths(client: TestClient) -> list[str]:
    """Every read the API offers over what the service holds."""
    paths = [
        "/apps",
        "/releases",
        "/artifacts",
        "/providers",
        "/events",
        "/formations?active=true",
        "/active-jobs",
    ]
    for app in await (await client.get("/apps")).json():
        base = f"/apps/{app['id']}"
        paths += [
            base,
            f"/apps/{app['name']}",
            *(
                f"{base}/{kind}"
                for kind in (
                    "release",
                    "releases",
                    "formations",
                    "jobs",
                    "routes",
                    "resources",
                    "deployments",
                    "log",
                )
            ),
        ]
        for job in await (await client.get(f"{base}/jobs")).json():
            paths.append(f"{base}/jobs/{job['id']}")
        for route in await (await client.get(f"{base}/routes")).json():
            paths.append(f"{base}/routes/{route['type']}/{route['id']}")
        for formation in await (await client.get(f"{base}/formations")).json():
            paths.append(f"{base}/formations/{formation['release']}?expand=true")
        for deployment in await (await client.get(f"{base}/deployments")).json():
            paths.append(f"/deployments/{deployment['id']}")
    for provider in await (await client.get("/providers")).json():
        paths += [f"/providers/{provider['id']}", f"/providers/{provider['id']}/resources"]
    for event in await (await client.get("/events", headers=JSON)).json():
        paths.append(f"/events/{event['id']}")
    return paths


async def answers(client: TestClient, paths: list[str]) -> list[tuple[str, int, bytes]]:
    found = []
    for path in paths:
        response = await client.get(path, headers=JSON)
        found.append((path, response.status, await response.read()))
    return found


@pytest.fixture
async def backup(
    aiohttp_client: Any, settings: Settings, make_database: Any, tmp_path: Path
) -> AsyncIterator[tuple[Path, TestClient]]:
    """A source service with build_history's log, and its backup."""
    client, store = await serve(aiohttp_client, settings, await make_database())
    await build_history(client)
    path = tmp_path / "source.tar"
    path.write_bytes(await (await client.get("/backup")).read())
    yield path, client
    await client.close()
    await store.close()


async def test_a_restored_database_serves_exactly_what_the_source_served(
    backup: tuple[Path, TestClient], aiohttp_client: Any, settings: Settings, make_database: Any
):
    """Every API read is equal, the SQL read model and the service pass verify, and a new
    backup of the copy is the same log, bit for bit."""
    path, source = backup
    target = await make_database()
    manifest = await restore(target, path)
    copy, store = await serve(aiohttp_client, settings, target)
    try:
        paths = await api_paths(source)
        assert len(paths) > 40
        assert await answers(copy, paths) == await answers(source, paths)
        assert await verify_read_model(store, SqlReadModel(store.pool)) == ([], [])
        service = Service(str(copy.make_url("")), AUTH_KEY)
        found, _ = await asyncio.to_thread(
            asyncio.run, verify_service(ArchiveSource(path), service)
        )
        assert found == []
        again = path.with_name("copy.tar")
        again.write_bytes(await (await copy.get("/backup")).read())
        assert ArchiveSource(again).manifest.log_sha256 == manifest.log_sha256
    finally:
        await copy.close()
        await store.close()


async def test_restore_refuses_a_database_with_events_unless_forced(
    backup: tuple[Path, TestClient], make_database: Any
):
    """A second restore into the same database is refused; --force replaces the log."""
    path, _ = backup
    target = await make_database()
    first = await restore(target, path)
    with pytest.raises(RestoreError, match="already holds"):
        await restore(target, path)
    assert (await restore(target, path, force=True)).log_sha256 == first.log_sha256


async def test_a_damaged_backup_is_refused_before_anything_is_written(
    backup: tuple[Path, TestClient], make_database: Any
):
    """The whole archive is checked first: a bad one leaves the database empty."""
    path, _ = backup
    body = path.read_bytes()
    path.write_bytes(body.replace(b'"team":"a"', b'"team":"z"', 1))
    target = await make_database()
    with pytest.raises(ArchiveError):
        await restore(target, path)
    conn = await asyncpg.connect(target)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
    finally:
        await conn.close()


async def test_the_command_line_restores_verifies_and_reports_drift(
    backup: tuple[Path, TestClient], make_database: Any
):
    """restore, then verify: 0; a tampered SQL row: 4 (drift); rebuild-sql repairs it; restore
    again: 1 (refused)."""
    path, _ = backup
    target = await make_database()
    code, out, err = await run_cli("replay", "restore", str(path), dsn=target)
    assert code == 0, err
    assert '"restored_events": 22' in out
    code, out, err = await run_cli("replay", "verify", dsn=target)
    assert (code, err) == (0, "")
    assert '"ok": true' in out
    conn = await asyncpg.connect(target)
    try:
        await conn.execute(
            'UPDATE read_model.apps SET doc = replace(doc::text, \'"team":"b"\', '
            "'\"team\":\"x\"')::json WHERE name = 'shop'"
        )
    finally:
        await conn.close()
    code, out, _ = await run_cli("replay", "verify", dsn=target)
    assert code == 4
    assert '.meta.team: log \\"b\\" != sql \\"x\\"' in out
    code, out, err = await run_cli("replay", "rebuild-sql", dsn=target)
    assert code == 0, err
    assert '"sql_read_model_at": 22' in out
    assert (await run_cli("replay", "verify", dsn=target))[0] == 0
    code, _, err = await run_cli("replay", "restore", str(path), dsn=target)
    assert code == 1 and "already holds 22 events" in err
