"""Keys kept in the log, across processes: one made by `evenflow keys` works on every
service following the log, a revocation refuses it on every worker and every `serve` within
a second, and no secret ever reaches a log line, an event, a backup or an error body."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.reliability.service import AUTH, JSON, KEY, Service
from tests.replay.scenario import run_cli

pytestmark = pytest.mark.postgres


def basic(secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth("", secret)}


async def statuses(url: str, headers: dict[str, str], times: int) -> list[int]:
    """The status of `times` GET /apps, each on a connection of its own (so that each
    worker of the service gets some)."""
    found = []
    for _ in range(times):
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh,
            fresh.get(f"{url}/apps", headers=headers) as r,
        ):
            found.append(r.status)
    return found


async def create_key(dsn: str, name: str, *args: str) -> str:
    code, out, err = await run_cli("keys", "create", name, *args, "--json", dsn=dsn)
    assert code == 0, err
    return str(json.loads(out)["secret"])


async def test_a_revocation_is_seen_by_every_worker_and_every_serve_within_a_second(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
):
    """A key made by the CLI is accepted by both workers of one service and by another
    service on the same database; revoked over HTTP on the second, it is refused by every
    process a second later (the accepted Authorization header it was remembered by
    included)."""
    dsn = await make_database()
    pair, single = Service(dsn, workdir, workers=2), Service(dsn, workdir)
    try:
        await pair.ready(session)
        await single.ready(session)
        secret = await create_key(dsn, "ci", "--scope", "read")
        deadline = time.monotonic() + 5
        while (await statuses(single.url, basic(secret), 1)) != [200]:
            assert time.monotonic() < deadline, "the new key never reached the service"
            await asyncio.sleep(0.05)
        assert set(await statuses(pair.url, basic(secret), 16)) == {200}
        revoked = await session.delete(f"{single.url}/keys/ci", headers=AUTH)
        assert revoked.status == 200, await revoked.text()
        await asyncio.sleep(1.0)
        assert set(await statuses(pair.url, basic(secret), 16)) == {401}
        assert set(await statuses(single.url, basic(secret), 4)) == {401}
        assert set(await statuses(pair.url, AUTH, 4)) == {200}
    finally:
        pair.stop()
        single.stop()


async def test_secrets_never_reach_logs_events_backups_nor_error_bodies(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
):
    """Keys made over HTTP and by the CLI, used well and badly (out of scope, on ?key=,
    as a user name, in bodies the service refuses): neither their secrets nor AUTH_KEY's
    appear in the service's DEBUG log, the CLI's output but for the creation, the log's
    events (data and meta), a backup, or any answer but the one that made the key."""
    dsn = await make_database()
    service = Service(dsn, workdir, {"LOG_LEVEL": "DEBUG"})
    bodies: list[bytes] = []
    try:
        await service.ready(session)
        async with session.post(
            f"{service.url}/apps", data=b'{"name": "kept"}', headers=AUTH | JSON
        ) as r:
            assert r.status == 200
        made = await session.post(
            f"{service.url}/keys", json={"name": "web", "scope": "read", "apps": ["kept"]},
            headers=AUTH,
        )  # fmt: skip
        web_secret = (await made.json())["secret"]
        cli_secret = await create_key(dsn, "ops", "--scope", "deploy", "--expires", "1d")
        code, out, err = await run_cli("keys", "list", "--json", dsn=dsn)
        assert code == 0 and "ops" in out
        bodies.append((out + err).encode())
        await asyncio.sleep(0.5)  # the CLI's key reaches the service
        for secret in (web_secret, cli_secret):
            for method, path, headers, body in [
                ("GET", "/apps", basic(secret), None),
                ("POST", "/apps", basic(secret), b'{"name": 1}'),
                ("POST", "/providers", basic(secret), b"{}"),
                ("GET", "/keys", basic(secret), None),
                ("GET", f"/backup?key={secret}", {}, None),
                ("GET", f"/apps?key={secret}", {}, None),
                ("GET", "/apps", {"Authorization": aiohttp.encode_basic_auth(secret, "x")}, None),
                ("POST", "/keys", AUTH, json.dumps({"name": secret, "scope": 0}).encode()),
            ]:
                async with session.request(
                    method, service.url + path, headers=headers | JSON, data=body
                ) as r:
                    assert r.status != 500, (path, await r.text())
                    bodies.append(await r.read())
        async with session.get(f"{service.url}/keys", headers=AUTH) as r:
            bodies.append(await r.read())
        async with session.get(f"{service.url}/audit", headers=AUTH) as r:
            bodies.append(await r.read())
        async with session.get(f"{service.url}/backup", headers=AUTH) as r:
            backup = await r.read()
        async with session.delete(f"{service.url}/keys/ops", headers=AUTH) as r:
            bodies.append(await r.read())
    finally:
        service.stop()
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT type, data::text, meta::text FROM events")
    finally:
        await connection.close()
    events = "\n".join(f"{kind} {data} {meta}" for kind, data, meta in rows)
    assert events.count("KeyCreated") == 2 and "KeyRevoked" in events
    log = service.log()
    for secret in (web_secret, cli_secret, KEY):
        assert secret not in log
        assert secret not in events
        assert secret.encode() not in backup
        assert all(secret.encode() not in body for body in bodies), secret
