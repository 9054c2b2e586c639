"""Read-model snapshots: loading one and folding the rest equals folding the whole log, and
a snapshot is used only for the log it was taken of, by the code that wrote it."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.postgres import PostgresEventStore
from eventstore.record import RecordedEvent
from projections import snapshot
from projections.memory import MemoryReadModel
from projections.read_model import MemoryQueries
from service import snapshots
from service.settings import Settings
from tests.projections.history import History, prelude, recorded
from tests.projections.test_state import FOLD_SETTINGS, contents, histories


def folded(records: list[RecordedEvent]) -> MemoryReadModel:
    model = MemoryReadModel()
    model.apply_records(records)
    return model


@FOLD_SETTINGS
@given(ops=histories, cut=st.floats(0, 1))
def test_a_snapshot_then_the_rest_of_the_log_equals_the_whole_fold(
    ops: list[Any], cut: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    log = recorded(ops)
    split = max(1, int(len(log) * cut))
    path = tmp_path_factory.mktemp("snapshot") / snapshot.FILE_NAME
    snapshot.save(path, folded(log[:split]), log[split - 1])
    loaded = snapshot.load(path)
    assert loaded is not None
    at, state = loaded
    assert at == snapshot.marker(log[split - 1])
    model = snapshot.restore(at, state)
    model.apply_records(log[split:])
    whole = folded(log)
    assert model.last_id == whole.last_id
    assert contents(model.state) == contents(whole.state)
    queries = asyncio.run(MemoryQueries(model).snapshot())
    assert queries == asyncio.run(MemoryQueries(whole).snapshot())


def test_a_snapshot_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It holds every release's env: other users (the jobs' uids) may not read it."""
    log = recorded([])
    path = tmp_path / "snapshots" / snapshot.FILE_NAME
    snapshot.save(path, folded(log), log[-1])
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def test_a_snapshot_of_other_code_or_a_broken_file_is_ignored(tmp_path: Path) -> None:
    log = recorded([])
    path = tmp_path / snapshot.FILE_NAME
    snapshot.save(path, folded(log), log[-1])
    assert snapshot.load(path) is not None
    path.write_bytes(path.read_bytes()[:100])
    assert snapshot.load(path) is None
    assert snapshot.load(tmp_path / "none") is None


@pytest.mark.postgres
async def test_the_service_starts_from_a_snapshot_of_its_log_only(
    pg_store: PostgresEventStore, make_database: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The snapshot a shutdown wrote is used by the next start on the same log; a start on
    another log folds from the beginning."""
    monkeypatch.setattr(snapshots, "SNAPSHOT_AFTER", 1)
    settings = Settings(data_dir=tmp_path)
    async with History(pg_store) as h:
        await prelude(h)
    model = await snapshots.initial_model(settings, pg_store)
    assert model.last_id == 0
    await model.catch_up(pg_store)
    await snapshots.save_if_due(settings, pg_store, model, 0)
    assert snapshots.snapshot_path(settings).exists()

    again = await snapshots.initial_model(settings, pg_store)
    assert again.last_id == model.last_id > 0
    assert contents(again.state) == contents(model.state)

    other = await PostgresEventStore.open(await make_database())
    try:
        async with History(other) as h:
            await prelude(h)  # the same kinds of events, but not the same log
        assert (await snapshots.initial_model(settings, other)).last_id == 0
    finally:
        await other.close()
