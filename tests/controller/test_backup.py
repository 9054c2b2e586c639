"""GET /backup and `python -m controller backup`: the log as a tar, consistent and complete."""

import asyncio
import hashlib
import io
import json
import os
import re
import sys
import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent
from eventstore.store import PAGE_SIZE
from replay import archive
from replay.archive import ArchiveError
from replay.reader import ArchiveReader, verify_archive
from service.backup import archive_chunks
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY

FILENAME = re.compile(r'attachment; filename="(evenflow-backup-\d{4}-\d\d-\d\d_\d{6})\.tar"')


async def create_apps(client: TestClient, count: int, prefix: str = "app") -> None:
    for n in range(count):
        body = {"name": f"{prefix}{n}", "meta": {"n": "x" * n}}
        response = await client.post("/apps", json=body)
        assert response.status == 200, await response.text()


async def listed(client: TestClient) -> list[dict[str, Any]]:
    response = await client.get("/events", headers={"Accept": "application/json"})
    return list(reversed(await response.json()))


def members(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


async def test_backup_is_a_tar_of_the_whole_log_and_a_manifest(client: TestClient, tmp_path: Path):
    """200 application/tar, a dated attachment, every event with every field (its actor too),
    a true manifest."""
    await create_apps(client, 3)
    response = await client.get("/backup")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/tar"
    (root,) = FILENAME.fullmatch(response.headers["Content-Disposition"]).groups()  # type: ignore[union-attr]
    body = await response.read()
    files = members(body)
    assert list(files) == [f"{root}/events/000001.jsonl", f"{root}/manifest.json"]
    lines = files[f"{root}/events/000001.jsonl"].splitlines()
    events = await listed(client)
    assert [json.loads(line)["id"] for line in lines] == [e["id"] for e in events]
    first = json.loads(lines[0])
    assert list(first) == [
        "id",
        "type",
        "object_type",
        "object_id",
        "app_id",
        "op",
        "unique_id",
        "meta",
        "data",
        "created_at",
    ]
    assert first["data"] == events[0]["data"]
    assert json.loads(first["meta"])["actor"]["key"] == events[0]["meta"]["actor"]["key"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["created_at"])
    manifest = json.loads(files[f"{root}/manifest.json"])
    log = files[f"{root}/events/000001.jsonl"]
    assert manifest["format"] == "evenflow-backup" and manifest["version"] == 1
    assert manifest["event_count"] == len(events) == len(lines)
    assert (manifest["first_event_id"], manifest["last_event_id"]) == (1, events[-1]["id"])
    assert manifest["log_sha256"] == hashlib.sha256(log).hexdigest()
    (tmp_path / "b.tar").write_bytes(body)
    assert verify_archive(tmp_path / "b.tar").event_count == len(events)


async def test_the_key_parameter_authenticates_a_download_link(anonymous: TestClient):
    """?key= works for /backup (Flynn), a wrong or missing key is a 401."""
    assert (await anonymous.get(f"/backup?key={AUTH_KEY}")).status == 200
    assert (await anonymous.get("/backup?key=nope")).status == 401
    assert (await anonymous.get("/backup")).status == 401


async def test_an_empty_log_backs_up_to_a_manifest_alone(client: TestClient, tmp_path: Path):
    """No events: no part, a manifest with count 0 and last event id 0."""
    path = tmp_path / "empty.tar"
    path.write_bytes(await (await client.get("/backup")).read())
    manifest = verify_archive(path)
    assert (manifest.event_count, manifest.first_event_id, manifest.last_event_id) == (0, None, 0)


class GatedStore(InMemoryEventStore):
    """A log whose reads stop after the first event until `go` is set; `fail_after` breaks
    reads after that many events."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.go = asyncio.Event()
        self.fail_after: int | None = None

    async def read(
        self,
        after: int = 0,
        *,
        until: int | None = None,
        filter: EventFilter = ALL_EVENTS,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RecordedEvent]:
        n = 0
        async for record in super().read(after, until=until, filter=filter):
            if n == 1:
                self.reading.set()
                await self.go.wait()
            if n == self.fail_after:
                raise RuntimeError("the disk is on fire")
            n += 1
            yield record


@pytest.fixture
async def gated(aiohttp_client: Any, settings: Settings) -> tuple[TestClient, GatedStore]:
    store = GatedStore()
    store.go.set()
    return await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS), store


async def test_a_backup_is_the_log_as_it_was_when_it_started(
    gated: tuple[TestClient, GatedStore], tmp_path: Path
):
    """Events appended while the backup streams are not in it: the snapshot's end is fixed first."""
    client, store = gated
    await create_apps(client, 3)
    before = await listed(client)
    store.go.clear()
    download = asyncio.create_task(client.get("/backup"))
    await store.reading.wait()
    await create_apps(client, 2, "late")  # written while the backup is halfway
    store.go.set()
    path = tmp_path / "b.tar"
    path.write_bytes(await (await download).read())
    assert [r.id for r in ArchiveReader(path)] == [e["id"] for e in before]
    assert verify_archive(path).last_event_id == before[-1]["id"]


async def test_a_failure_midway_aborts_the_download_without_a_manifest(
    gated: tuple[TestClient, GatedStore], monkeypatch: pytest.MonkeyPatch
):
    """The client sees a broken transfer, and the bytes it got hold no manifest."""
    monkeypatch.setattr(archive, "FIRST_PART_BYTES", 512)
    monkeypatch.setattr(archive, "PART_BYTES", 512)
    client, store = gated
    await create_apps(client, 20)
    store.fail_after = 30
    response = await client.get("/backup")
    assert response.status == 200  # the headers left before the failure
    received = bytearray()
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in response.content.iter_any():
            received += chunk
    assert b"events/000001.jsonl" in received
    assert b"manifest.json" not in received
    with pytest.raises(ArchiveError):
        list(ArchiveReader(io.BytesIO(bytes(received))))


async def test_the_first_bytes_leave_before_the_log_is_read(monkeypatch: pytest.MonkeyPatch):
    """The archive streams: its first part is ready after a few events, whatever the log size."""
    monkeypatch.setattr(archive, "FIRST_PART_BYTES", 1024)
    store = InMemoryEventStore()
    for n in range(50):
        await store.append([NewEvent("AppCreated", "app", f"id-{n}", None, b'{"n":%d}' % n)])
    consumed = 0
    inner = store.read

    async def counting(*args: Any, **kwargs: Any) -> AsyncIterator[RecordedEvent]:
        nonlocal consumed
        async for record in inner(*args, **kwargs):
            consumed += 1
            yield record

    store.read = counting  # type: ignore[method-assign]
    chunks = archive_chunks(store, 50, datetime.now(UTC))
    first = await anext(chunks)
    assert first[257:262] == b"ustar" and consumed < 50
    assert len(b"".join([first] + [c async for c in chunks])) % 512 == 0


@pytest.mark.postgres
async def test_the_command_line_backup_writes_the_same_archive(
    aiohttp_client: Any, settings: Settings, make_database: Any, tmp_path: Path
):
    """`python -m controller backup -o FILE` needs no server and writes a complete archive."""
    dsn = await make_database()
    store = await PostgresEventStore.open(dsn)
    try:
        client = await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)
        await create_apps(client, 4)
        over_http = tmp_path / "http.tar"
        over_http.write_bytes(await (await client.get("/backup")).read())
    finally:
        await store.close()
    out = tmp_path / "cli.tar"
    env = {**os.environ, "DATABASE_URL": dsn, "LOG_LEVEL": "warning"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        "backup",
        "-o",
        str(out),
        env=env,
        cwd=Path(__file__).parents[2],
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert verify_archive(out).log_sha256 == verify_archive(over_http).log_sha256
    assert not list(tmp_path.glob("*.partial"))
