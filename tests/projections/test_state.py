"""Properties of the fold (projections.state.apply) over random histories."""

import asyncio
import copy
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.codec import decode
from eventstore.record import RecordedEvent
from projections import causes
from projections.memory import MemoryReadModel
from projections.read_model import MemoryQueries
from projections.state import State, apply
from tests.projections.history import OPS, recorded

FOLD_SETTINGS = settings(max_examples=60, deadline=None)
histories = st.lists(OPS, max_size=40)


def contents(state: State) -> dict[str, Any]:
    """Everything the state holds, field by field (the journal aside)."""
    return {f.name: getattr(state, f.name) for f in attrs.fields(State) if f.name != "journal"}


def fold(state: State, records: list[RecordedEvent]) -> State:
    for record in records:
        apply(state, decode(record), record.created_at)
    return state


def fold_records(state: State, records: list[RecordedEvent]) -> State:
    """`fold`, and the index the read model folds from records beside apply."""
    for record in records:
        event = decode(record)
        apply(state, event, record.created_at)
        causes.fold(state.causes, record, event)
    return state


def snapshot(records: list[RecordedEvent]) -> dict[str, Any]:
    model = MemoryReadModel()
    model.apply_records(records)
    return asyncio.run(MemoryQueries(model).snapshot())


@FOLD_SETTINGS
@given(ops=histories, cut=st.floats(0, 1))
def test_folding_a_prefix_then_the_rest_equals_folding_all(ops: list[Any], cut: float) -> None:
    """Folding the log in two parts, into a model that stopped in between, changes nothing."""
    log = recorded(ops)
    split = int(len(log) * cut)
    model = MemoryReadModel()
    model.apply_records(log[:split])
    model.apply_records(log[split:])
    assert contents(model.state) == contents(fold_records(State(), log))
    assert asyncio.run(MemoryQueries(model).snapshot()) == snapshot(log)


@FOLD_SETTINGS
@given(ops=histories)
def test_events_already_folded_are_skipped(ops: list[Any]) -> None:
    """Applying records again, or older ones, leaves the model as it was."""
    log = recorded(ops)
    model = MemoryReadModel()
    model.apply_records(log)
    before = copy.deepcopy(contents(model.state))
    assert model.apply_records(log) == []
    assert model.apply_records(log[: len(log) // 2]) == []
    assert contents(model.state) == before
    assert model.last_id == log[-1].id


@FOLD_SETTINGS
@given(ops=histories, cut=st.floats(0, 1))
def test_rolling_back_the_journal_restores_the_state_exactly(ops: list[Any], cut: float) -> None:
    """Whatever was folded while recording, rollback() returns to the state before it."""
    log = recorded(ops)
    split = int(len(log) * cut)
    state = fold(State(), log[:split])
    before = copy.deepcopy(contents(state))
    state.record()
    fold(state, log[split:])
    state.rollback()
    state.stop_recording()
    assert contents(state) == before


@FOLD_SETTINGS
@given(ops=histories, cuts=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_rolling_back_to_a_savepoint_keeps_what_came_before_it(
    ops: list[Any], cuts: tuple[float, float]
) -> None:
    """rollback(savepoint) undoes only what was folded after the savepoint."""
    log = recorded(ops)
    first, second = sorted(int(len(log) * cut) for cut in cuts)
    state = State()
    state.record()
    fold(state, log[:first])
    savepoint = state.savepoint()
    fold(state, log[first:second])
    middle = copy.deepcopy(contents(state))
    inner = state.savepoint()
    fold(state, log[second:])
    state.rollback(inner)
    assert contents(state) == middle
    state.rollback(savepoint)
    assert contents(state) == contents(fold(State(), log[:first]))
    state.rollback()
    assert contents(state) == contents(State())
