"""Backups carry the events' meta (Idempotency-Keys): a restored log answers a retry with the
first attempt's events; a line of an older backup, without meta, reads as it always did."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from commands.apps import CreateApp
from commands.dispatch import Dispatcher
from eventstore.postgres import PostgresEventStore
from eventstore.record import RecordedEvent
from projections.idempotency import Idempotency
from projections.memory import MemoryReadModel
from replay.archive import decode_line, encode_line
from replay.restore import restore
from service.backup import archive_chunks

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = Idempotency("create-once", ("POST", "/apps", hashlib.sha256(b"{}").hexdigest()))
OLD_LINE = (
    b'{"id":7,"type":"AppCreated","object_type":"app","object_id":"a","app_id":null,'
    b'"op":"op_create","unique_id":null,"data":{"name":"a"},'
    b'"created_at":"2026-01-01T00:00:00.000000Z"}\n'
)


def test_a_line_of_an_older_backup_reads_as_an_event_without_meta():
    """No "meta" in the line: the event has none, and it encodes to the very same line."""
    record = decode_line(OLD_LINE)
    assert record.meta is None and record.data == b'{"name":"a"}'
    assert encode_line(record) == OLD_LINE


def test_meta_survives_a_line_byte_for_byte():
    """Meta is kept as its text, whatever it holds (even what looks like a payload key)."""
    meta = b'{"idempotency_key":"k,\\"data\\":x","request": {"path":"/apps"}}'
    record = RecordedEvent(1, "AppCreated", "app", "a", None, None, None, b"{}", T0, meta)
    assert decode_line(encode_line(record)) == record


async def started(store: PostgresEventStore) -> Dispatcher:
    model = MemoryReadModel()
    await model.catch_up(store)
    dispatcher = Dispatcher(store, model)
    dispatcher.start()
    return dispatcher


@pytest.mark.postgres
async def test_a_restored_log_still_answers_a_keyed_retry_with_the_first_events(
    make_database: Any, tmp_path: Path
):
    """Write with a key, back up, restore elsewhere: the retry there is not applied again."""
    source = await PostgresEventStore.open(await make_database())
    dispatcher = await started(source)
    first = await dispatcher.handle(
        CreateApp(id="00000000-0000-4000-8000-000000000001", now=T0, name="once"), KEY
    )
    await dispatcher.stop()
    path = tmp_path / "backup.tar"
    with path.open("wb") as f:
        async for chunk in archive_chunks(source, first[-1].id, T0):
            f.write(chunk)
    await source.close()

    target_dsn = await make_database()
    await restore(target_dsn, path)
    target = await PostgresEventStore.open(target_dsn)
    try:
        assert [e async for e in target.read()] == first
        restored = await started(target)
        again = CreateApp(id="00000000-0000-4000-8000-000000000002", now=T0, name="once")
        assert await restored.handle(again, KEY) == first
        await restored.stop()
        assert await target.last_id() == first[-1].id
    finally:
        await target.close()
