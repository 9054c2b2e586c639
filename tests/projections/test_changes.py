"""What a folded batch changed (projections.changes), read from the fold's journal, and the
window of recent changes a writer of the SQL model takes them from."""

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.codec import encode
from domain.events import (
    AppCreated,
    FormationScaled,
    ReleaseCreated,
    ReleaseDeleted,
    RouteCreated,
    RouteDeleted,
)
from domain.objects import App, Release, Route
from eventstore.record import RecordedEvent
from projections.changes import Changes, Put, everything, merge, since
from projections.memory import Folded, MemoryReadModel
from projections.recent_changes import RecentChanges
from tests.projections.history import OPS, T0, recorded, uid


class Batches:
    """A follower that keeps the changes of every batch it is handed."""

    wants_changes = 10**9

    def __init__(self) -> None:
        self.changes: list[Changes] = []

    def applied(self, folded: Folded) -> None:
        assert folded.changes is not None
        self.changes.append(folded.changes)

    def failed(self, error: BaseException) -> None:
        raise AssertionError(error)


def folded_in(parts: list[list[RecordedEvent]]) -> tuple[MemoryReadModel, Changes]:
    """A model that folded `parts` one batch each, and their changes merged."""
    model, batches = MemoryReadModel(), Batches()
    model.add_follower(batches)
    for part in parts:
        model.apply_records(part)
    merged = merge(batches.changes)
    assert merged is not None
    return model, merged


def cut(log: list[RecordedEvent], cuts: list[float]) -> list[list[RecordedEvent]]:
    bounds = [0, *sorted(int(len(log) * c) for c in cuts), len(log)]
    return [log[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def rows(changes: Changes) -> dict[str, Any]:
    """What a write of `changes` leaves: each object and whether it is live, and the links."""
    kinds = {
        kind: {key: (put.obj, put.deleted_at is None) for key, put in puts.items()}
        for kind, puts in changes.puts.items()
        if puts
    }
    return {"kinds": kinds, "links": {pair for pair, (_, now) in changes.links.items() if now}}


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(OPS, max_size=40), cuts=st.lists(st.floats(0, 1), max_size=6))
def test_changes_do_not_depend_on_how_the_log_was_cut_into_batches(
    ops: list[Any], cuts: list[float]
) -> None:
    """The changes of any batches merged are those of the whole log in one batch (objects,
    deletions and their times, last events, links), and hold what the state holds."""
    log = recorded(ops)
    model, merged = folded_in(cut(log, cuts))
    _, whole = folded_in([log])
    assert (merged.after, merged.upto, merged.events) == (0, log[-1].id, len(log))
    assert merged.puts == whole.puts and merged.links == whole.links
    held, changed = rows(everything(model.state, model.last_id, model.last_at)), rows(merged)
    assert changed["links"] == held["links"]
    assert set(held["kinds"]) <= set(changed["kinds"])
    for kind, objects in changed["kinds"].items():  # plus the deleted ones the state forgot
        kept = held["kinds"].get(kind, {})
        forgot = {key: row for key, row in objects.items() if key not in kept}
        assert {**kept, **forgot} == objects
        assert all(not live for _, live in forgot.values())
        assert not forgot or kind in ("routes", "resources")


def written(changes: Changes) -> dict[str, Any]:
    """rows(), with the event that last changed each object and link."""
    kinds = {
        kind: {key: (put.obj, put.deleted_at is None, put.event_id) for key, put in puts.items()}
        for kind, puts in changes.puts.items()
        if puts
    }
    return {"kinds": kinds, "links": changes.links}


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(OPS, max_size=40),
    at=st.floats(0, 1),
    cuts=st.lists(st.floats(0, 1), max_size=4),
)
def test_what_changed_after_a_position_is_what_the_events_after_it_changed(
    ops: list[Any], at: float, cuts: list[float]
) -> None:
    """Cut out of batches that straddle a position, the changes after it are those of its
    events after it, folded as one batch on top of the rest."""
    log = recorded(ops)
    position = int(len(log) * at)
    after = log[position - 1].id if position else 0
    _, straddling = folded_in(cut(log, cuts))
    model, batches = MemoryReadModel(), Batches()
    model.apply_records(log[:position])
    model.add_follower(batches)
    model.apply_records(log[position:])
    expected = merge(batches.changes) or Changes(after, after, None)
    assert written(since(straddling, after)) == written(expected)


def record(n: int, event: Any, seconds: int) -> tuple[RecordedEvent, Any]:
    return RecordedEvent.of(encode(event), n, T0 + timedelta(seconds=seconds)), event


def fold_batches(*batches: list[tuple[RecordedEvent, Any]]) -> tuple[MemoryReadModel, Changes]:
    model, seen = MemoryReadModel(), Batches()
    model.add_follower(seen)
    for batch in batches:
        model.apply_records([r for r, _ in batch], [e for _, e in batch])
    merged = merge(seen.changes)
    assert merged is not None
    return model, merged


APP, RELEASE = uid(1), uid(2)
ROUTE = Route("tcp", uid(3), f"controller/apps/{APP}", "s", T0, T0, port=5)


def test_a_route_created_and_deleted_in_one_batch_is_put_deleted_with_its_last_value() -> None:
    """A route the state forgot within a batch is written deleted, as it last was, at the
    time of the event that deleted it."""
    _, changes = fold_batches(
        [record(1, RouteCreated(ROUTE), 1), record(2, RouteDeleted(ROUTE), 2)]
    )
    assert changes.puts["routes"][ROUTE.id] == Put(ROUTE, 2, T0 + timedelta(seconds=2))


def test_a_formation_deleted_twice_keeps_its_first_deletion() -> None:
    """Deleted again in a later batch, a formation says it was deleted earlier (the time
    written then stands) and, merged with the batch that deleted it, that batch's time."""
    setup = [
        record(1, AppCreated(App(APP, "a", T0, T0)), 0),
        record(2, ReleaseCreated(Release(RELEASE, T0, app_id=APP)), 0),
        record(3, FormationScaled(APP, RELEASE, {"web": 1}), 1),
        record(4, FormationScaled(APP, RELEASE, None), 2),
    ]
    again = [record(5, FormationScaled(APP, RELEASE, None), 3)]
    model, merged = fold_batches(setup, again)
    second = MemoryReadModel()
    seen = Batches()
    second.apply_records([r for r, _ in setup])
    second.add_follower(seen)
    second.apply_records([r for r, _ in again])
    (alone,) = seen.changes
    formation = model.state.formations[(APP, RELEASE)]
    assert alone.puts["formations"][(APP, RELEASE)] == Put(formation, 5, formation.updated_at, True)
    assert merged.puts["formations"][(APP, RELEASE)] == Put(formation, 5, T0 + timedelta(seconds=2))


def test_a_release_unlinked_and_linked_again_counts_from_its_new_link() -> None:
    """A link removed says so; one made again names the event that made it."""
    made = [
        record(1, AppCreated(App(APP, "a", T0, T0)), 0),
        record(2, ReleaseCreated(Release(RELEASE, T0, app_id=APP)), 0),
        record(3, ReleaseDeleted(APP, RELEASE), 1),
    ]
    again = [record(4, FormationScaled(APP, RELEASE, {"web": 1}), 2)]
    assert fold_batches(made)[1].links == {(APP, RELEASE): (3, False)}
    assert fold_batches(made, again)[1].links == {(APP, RELEASE): (4, True)}
    assert fold_batches(made + again)[1].links == {(APP, RELEASE): (4, True)}


def batch(after: int, upto: int) -> Changes:
    return Changes(after, upto, None, events=upto - after, size=10 * (upto - after))


def handed(changes: Changes | None, last: int) -> Folded:
    rec = RecordedEvent(last, "AppCreated", "app", "x", None, None, None, b"{}", T0)
    return Folded([(rec, None)], changes)  # type: ignore[list-item]


def test_the_window_keeps_the_newest_changes_within_its_bounds() -> None:
    """Beyond its bound the oldest batches go, and positions before them cannot be told."""
    window = RecentChanges(0, limit=5)
    for n in range(4):
        window.applied(handed(batch(2 * n, 2 * n + 2), 2 * n + 2))
    assert (window.start, window.end) == (4, 8)
    assert window.since(3) is None
    assert window.since(4) is not None and window.since(4).after == 4  # type: ignore[union-attr]
    assert window.since(8) == Changes(8, 8, None)


def test_a_batch_without_changes_starts_the_window_over() -> None:
    """A batch folded without its journal leaves nothing before it known."""
    window = RecentChanges(0)
    window.applied(handed(batch(0, 3), 3))
    window.applied(handed(None, 7))
    assert (window.start, window.end, window.since(3)) == (7, 7, None)


def test_forgetting_what_was_written_keeps_the_rest() -> None:
    """forget(position) lets go of the batches up to it, not of later ones."""
    window = RecentChanges(0)
    for n in range(3):
        window.applied(handed(batch(n, n + 1), n + 1))
    window.forget(2)
    assert window.start == 2 and window.since(1) is None
    assert window.since(2) == merge([batch(2, 3)])
