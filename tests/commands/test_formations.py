"""Formation deciders: given a history, a put or delete yields `scale` events or a domain error
(pure, no I/O)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.errors import NotFoundError, ValidationError
from commands.formations import DeleteFormation, PutFormation, delete_formation, put_formation
from domain.events import AppCreated, ArtifactCreated, Event, FormationScaled, ReleaseCreated
from domain.objects import App, Artifact, Release
from projections.formations import active_formations, app_formations
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APP = "00000000-0000-4000-8000-00000000000a"
REL, REL2, BARE = "r1", "r2", "bare"
PROCESS_TYPES = ("web", "worker")


def given_history(*events: Event, protected: bool = False) -> State:
    """An app "web" and releases r1, r2 (web and worker types, with an artifact) and "bare"."""
    state = State()
    history: list[Event] = [
        AppCreated(App(APP, "web", T0, T0, protected=protected)),
        ArtifactCreated(Artifact("art", "docker", "https://e/x", T0)),
        *(
            ReleaseCreated(
                Release(r, T0, artifact_id="art", processes={p: {} for p in PROCESS_TYPES})
            )
            for r in (REL, REL2)
        ),
        ReleaseCreated(Release(BARE, T0, processes={"web": {}})),
        *events,
    ]
    for event in history:
        apply(state, event, T0)
    return state


def decided(state: State, command: PutFormation | DeleteFormation) -> list[Event]:
    """Decide, then fold the events as the dispatcher does."""
    decide = put_formation if isinstance(command, PutFormation) else delete_formation
    events = decide(state, command)  # type: ignore[arg-type]
    for event in events:
        apply(state, event, command.now)
    return events


def test_put_formation_records_the_counts_and_the_previous_ones():
    """The first put has no prev_processes; the next replaces the counts and carries them."""
    state = given_history()
    assert decided(state, PutFormation("web", REL, T0, {"web": 2})) == [
        FormationScaled(APP, REL, {"web": 2}, None)
    ]
    assert decided(state, PutFormation(APP, REL, T0, {"worker": 1})) == [
        FormationScaled(APP, REL, {"worker": 1}, {"web": 2})
    ]
    formation = state.formation(APP, REL)
    assert formation is not None and formation.processes == {"worker": 1}


def test_put_formation_checks_in_flynns_order():
    """Unknown app, then unknown release (not found), then no artifact, then unknown types."""
    state = given_history()
    with pytest.raises(NotFoundError):
        put_formation(state, PutFormation("nope", "missing", T0, {"db": 1}))
    with pytest.raises(NotFoundError):
        put_formation(state, PutFormation("web", "missing", T0, {"db": 1}))
    with pytest.raises(ValidationError) as info:
        put_formation(state, PutFormation("web", BARE, T0, {"db": 1}))
    assert (info.value.field, info.value.message) == ("", "release is not deployable")
    with pytest.raises(ValidationError) as info:
        put_formation(state, PutFormation("web", REL, T0, {"db": 1, "web": 1, "x": 0}))
    assert info.value.message.endswith("Invalid process types: [db, x]")


def test_delete_formation_needs_a_live_one_and_records_processes_none():
    """Deleting is `scale` with processes None and the last counts; a second delete is 404."""
    state = given_history(FormationScaled(APP, REL, {"web": 1}))
    assert decided(state, DeleteFormation("web", REL, T0)) == [
        FormationScaled(APP, REL, None, {"web": 1})
    ]
    with pytest.raises(NotFoundError):
        delete_formation(state, DeleteFormation("web", REL, T0))
    with pytest.raises(NotFoundError):
        delete_formation(state, DeleteFormation("web", REL2, T0))


def test_protected_app_keeps_at_least_one_running_process():
    """A protected app refuses to stop its last processes by put or delete, but a deploy's
    hand-over (new release up, then old down) and zero-to-zero puts are fine."""
    state = given_history(FormationScaled(APP, REL, {"web": 2}), protected=True)
    for command in (PutFormation("web", REL, T0, {"web": 0}), DeleteFormation("web", REL, T0)):
        with pytest.raises(ValidationError) as info:
            decided(state, command)
        assert info.value.field == "protected"
    decided(state, PutFormation("web", REL2, T0, {"web": 0}))
    decided(state, PutFormation("web", REL2, T0, {"web": 2}))
    decided(state, PutFormation("web", REL, T0, {"web": 0}))
    decided(state, DeleteFormation("web", REL, T0))
    assert [f.release_id for f in app_formations(state, APP)] == [REL2]


counts = st.dictionaries(st.sampled_from(PROCESS_TYPES), st.integers(0, 5), max_size=2)


@given(st.lists(st.tuples(st.sampled_from([REL, REL2]), counts), max_size=6), counts)
def test_put_then_delete_leaves_no_live_formation_and_two_scale_events(
    history: list[tuple[str, dict[str, int]]], processes: dict[str, int]
):
    """After any history of puts, a put then a delete of one formation emit exactly two
    `scale` events and leave it neither live nor active."""
    state = given_history()
    for release_id, earlier in history:
        decided(state, PutFormation("web", release_id, T0, earlier))
    later = T0 + timedelta(seconds=1)
    events = decided(state, PutFormation("web", REL, later, processes))
    events += decided(state, DeleteFormation("web", REL, later))
    assert [type(e) for e in events] == [FormationScaled, FormationScaled]
    assert events[1] == FormationScaled(APP, REL, None, processes or None)
    assert state.formation(APP, REL) is None
    assert REL not in {f.release_id for f in app_formations(state, APP)}
    assert all(f.release_id != REL for f in active_formations(state))


@given(st.sampled_from([REL, REL2, BARE, "missing"]), counts)
def test_formation_deciders_are_pure(release_id: str, processes: dict[str, int]):
    """Deciding twice against the same state gives the same outcome and leaves it untouched."""
    state = given_history(FormationScaled(APP, REL, {"web": 1}))
    before = dict(state.formations)
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(put_formation(state, PutFormation("web", release_id, T0, processes)))
        except (NotFoundError, ValidationError) as exc:
            outcomes.append([type(exc).__name__])  # type: ignore[list-item]
    assert outcomes[0] == outcomes[1]
    assert state.formations == before
