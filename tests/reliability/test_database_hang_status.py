"""PostgreSQL hung (every one of its processes stopped with SIGSTOP: connections stay open,
nothing answers): the status still answers within 2 s, unhealthy, with the reason; a write
is refused with a retryable 503 that says why and when to retry; reads go on; and all
recovers by itself once the database runs again."""

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from localpg import LocalPG
from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, Service

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

#: The status's documented bound.
STATUS_WITHIN = 2.0
#: A write waits for the database at most this long (eventstore APPEND_TIMEOUT, and the
#: dropped connection's close), plus this machine's slack.
WRITE_REFUSED_WITHIN = 15.0 + 1.0 + 4.0


def server_processes(pg: LocalPG) -> list[int]:
    """The postmaster and every process it started (backends, writer, checkpointer, ...)."""
    assert pg.pid is not None
    found = [pg.pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pg.pid:
                found.append(int(entry.name))
    return found


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a backend that ended meanwhile
            os.kill(pid, signum)


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: bytes | None = None
) -> tuple[float, int, dict[str, str], bytes]:
    began = time.monotonic()
    async with session.request(method, url, data=body, headers=AUTH | JSON) as r:
        return time.monotonic() - began, r.status, dict(r.headers), await r.read()


async def test_a_hung_database_is_reported_within_two_seconds_and_writes_are_a_clear_503(
    own_pg: LocalPG,
    service: Service,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
):
    """Statuses within 2 s saying the database does not answer; a write refused with 503,
    Retry-After and its reason; reads served; healthy again and writable once it runs."""
    status_url = f"{service.url}/.well-known/status"
    assert (await call(session, "GET", status_url))[1] == 200
    frozen = server_processes(own_pg)
    signal_all(frozen, signal.SIGSTOP)
    try:
        write = call(session, "POST", f"{service.url}/apps", b'{"name": "w"}')
        writing = asyncio.create_task(write)
        statuses = []
        for _ in range(4):
            statuses.append(await call(session, "GET", status_url))
            await asyncio.sleep(0.5)
        took, status, headers, body = await call(session, "GET", f"{service.url}/apps")
        assert status == 200 and took < 1.0, "a read waited for the database"
        wrote = await asyncio.wait_for(writing, WRITE_REFUSED_WITHIN)
    finally:
        signal_all(frozen, signal.SIGCONT)
    for took, status, _, body in statuses:
        data = orjson.loads(body)["data"]
        assert took < STATUS_WITHIN and status == 500, (took, data)
        assert data["status"] == "unhealthy" and data["problems"]["database"].strip(), data
    took, status, headers, body = wrote
    document = orjson.loads(body)
    assert status == 503 and headers["Retry-After"] == "1", document
    assert document["code"] == "service_unavailable" and document["retry"] is True
    assert "did not answer" in document["message"], document
    report(request, "slowest status while hung (s)", f"{max(s[0] for s in statuses):.2f}")
    report(request, "a status while hung", orjson.loads(statuses[-1][3])["data"]["problems"])
    report(request, "a write while hung", f"{took:.1f}s: {body.decode()}")

    deadline = time.monotonic() + 30
    while (await call(session, "GET", status_url))[1] != 200:
        assert time.monotonic() < deadline, "the status did not turn healthy again"
        await asyncio.sleep(0.2)
    while (await call(session, "POST", f"{service.url}/apps", b'{"name": "after"}'))[1] != 200:
        assert time.monotonic() < deadline, "writes did not resume"
        await asyncio.sleep(0.2)
