"""The fold's index of Idempotency-Keys: a key's run of events, its request, and forgetting
after RETENTION of log time; it survives a read-model snapshot."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.codec import encode
from domain.events import AppCreated
from domain.objects import App
from eventstore.record import RecordedEvent
from projections import snapshot
from projections.idempotency import RETENTION, Idempotency, KeyedWrite
from projections.memory import MemoryReadModel

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = Idempotency("k1", ("POST", "/apps", "ab" * 32))


def records(
    start: int, at: datetime, key: Idempotency | None, count: int = 1
) -> list[RecordedEvent]:
    """`count` app creations from id `start`, written together at `at` with `key`."""
    apps = [
        App(
            id=f"00000000-0000-4000-8000-{start + n:012d}",
            name=f"a{start + n}",
            created_at=at,
            updated_at=at,
        )
        for n in range(count)
    ]
    new = [encode(AppCreated(app)) for app in apps]
    if key is not None:
        new = key.mark(new)
    return [RecordedEvent.of(e, start + n, at) for n, e in enumerate(new)]


def test_a_keyed_command_is_indexed_as_its_run_of_events_with_its_request():
    """The first event's request and the ids of all the command's events are indexed."""
    model = MemoryReadModel()
    model.apply_records(records(1, T0, None) + records(2, T0, KEY, count=3) + records(5, T0, None))
    assert model.state.idempotency == {"k1": KeyedWrite(KEY.request, 2, 4, T0)}


def test_keys_are_forgotten_after_the_retention_in_log_time():
    """A key recorded more than RETENTION before the newest event folded is dropped; one
    recorded within it stays, whatever the wall clock says."""
    model = MemoryReadModel()
    model.apply_records(records(1, T0, KEY))
    later = Idempotency("k2", KEY.request)
    model.apply_records(records(2, T0 + RETENTION, later))
    assert list(model.state.idempotency) == ["k1", "k2"]
    model.apply_records(records(3, T0 + RETENTION + timedelta(microseconds=1), None))
    assert list(model.state.idempotency) == ["k2"]


def test_the_index_survives_a_snapshot(tmp_path: Path):
    """A service restarted from a snapshot still knows the keys folded before it."""
    model = MemoryReadModel()
    folded = records(1, T0, KEY, count=2)
    model.apply_records(folded)
    path = tmp_path / "snapshot"
    snapshot.save(path, model, folded[-1])
    loaded = snapshot.load(path)
    assert loaded is not None
    assert snapshot.restore(*loaded).state.idempotency == model.state.idempotency
