"""The Postgres store's memory of its own appends: a subscriber takes events from it only
when a chain of this store's batches covers them all."""

from datetime import UTC, datetime

from eventstore.record import RecordedEvent
from eventstore.written import Written

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def batch(first: int, last: int) -> list[RecordedEvent]:
    return [
        RecordedEvent(n, "AppCreated", "app", f"o{n}", None, None, None, b"{}", NOW)
        for n in range(first, last + 1)
    ]


def ids(records: list[RecordedEvent] | None) -> list[int] | None:
    return None if records is None else [r.id for r in records]


def test_a_chain_of_own_batches_is_served_from_memory() -> None:
    written = Written()
    written.add(10, batch(11, 12))
    written.add(12, batch(13, 15))
    assert ids(written.between(10, 15)) == [11, 12, 13, 14, 15]
    assert ids(written.between(12, 15)) == [13, 14, 15]
    assert ids(written.between(10, 12)) == [11, 12]
    assert ids(written.between(10, 14)) == [11, 12, 13, 14]  # a head inside a batch


def test_a_gap_or_an_unknown_start_means_reading_the_log() -> None:
    written = Written()
    written.add(10, batch(11, 12))
    written.add(13, batch(14, 15))  # event 13 came from another process
    assert written.between(10, 15) is None
    assert written.between(11, 12) is None  # not a batch boundary
    assert written.between(5, 12) is None
    assert ids(written.between(13, 15)) == [14, 15]


def test_old_batches_are_forgotten_beyond_the_limit() -> None:
    written = Written(limit=4)
    written.add(0, batch(1, 2))
    written.add(2, batch(3, 4))
    written.add(4, batch(5, 6))
    assert written.between(0, 6) is None
    assert ids(written.between(2, 6)) == [3, 4, 5, 6]
