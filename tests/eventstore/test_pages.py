"""Reads of the Postgres log come in pages bounded by bytes as well as by events, so that a
reader of large events holds a few of them at a time, never a page of thousands."""

import pytest

from eventstore import postgres
from eventstore.postgres import PostgresEventStore
from tests.eventstore.conftest import ev
from tests.eventstore.test_contract import collect

pytestmark = pytest.mark.postgres

KB = b'"' + b"x" * 998 + b'"'  # a payload of 1000 bytes


async def test_pages_hold_at_most_page_bytes_of_payloads_and_reads_see_every_event(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    """With 2500 bytes a page, pages of 1000-byte events hold 3; an event larger than a page
    comes alone; forward, backward and subscribed reads still see every event, in order."""
    monkeypatch.setattr(postgres, "PAGE_BYTES", 2500)
    store = await PostgresEventStore.open(database_url)
    try:
        written = await store.append([ev(f"e{i}", data=KB) for i in range(10)])
        written += await store.append([ev("huge", data=b'"' + b"x" * 9998 + b'"'), ev("last")])
        assert [e.object_id for e in await store.read_page(0, 100)] == ["e0", "e1", "e2"]
        assert [e.object_id for e in await store.read_page(written[9].id, 100)] == ["huge"]
        assert await collect(store.read()) == written
        assert await collect(store.read(page_size=2)) == written
        assert [e async for e in store.read_backward()] == written[::-1]
        assert [e async for e in store.read_backward(count=5)] == written[::-1][:5]
        assert await collect(store.subscribe(), n=len(written)) == written
    finally:
        await store.close()
