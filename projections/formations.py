"""Formation queries over State: an app's live formations, the active ones, the expanded
shapes Flynn serves, and what changed since a stream last looked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.objects import JSON, Formation
from domain.timefmt import ZERO_TIME, format_time
from projections.state import State

FormationKey = tuple[str, str]  # (app id, release id)

#: Ends a formation stream's backlog. Flynn: controller/formation.go sendUpdatedSince sends an
#: empty ExpandedFormation, whose non-pointer updated_at prints as Go's zero time.
SENTINEL: JSON = {"updated_at": format_time(ZERO_TIME)}


def _newest_created(formation: Formation) -> tuple[Any, ...]:
    return (formation.created_at, formation.release_id)


def _newest_updated(formation: Formation) -> tuple[Any, ...]:
    return (formation.updated_at, formation.app_id, formation.release_id)


def formation(state: State, app_id: str, release_id: str) -> Formation | None:
    """The app's live formation of the release (a deleted one is not found)."""
    return state.formation(app_id, release_id)


def app_formations(state: State, app_id: str) -> list[Formation]:
    """The app's live formations, newest first (Flynn: formationListByAppQuery)."""
    live = (state.formation(app_id, r) for r in state.app_formations.get(app_id, {}))
    return sorted((f for f in live if f is not None), key=_newest_created, reverse=True)


def active_formations(state: State) -> list[Formation]:
    """Live formations running at least one process, last updated first
    (Flynn: formationListActiveQuery)."""
    active = (f for f in state.formations.values() if not f.deleted and f.total > 0)
    return sorted(active, key=_newest_updated, reverse=True)


def formations_since(state: State, since: datetime) -> list[Formation]:
    """Every formation, deleted ones too, updated at or after `since`, last updated first
    (Flynn: formationListSinceQuery)."""
    recent = (f for f in state.formations.values() if f.updated_at >= since)
    return sorted(recent, key=_newest_updated, reverse=True)


def app_process_count(state: State, app_id: str, excluding: str | None = None) -> int:
    """How many processes the app's live formations ask for, leaving out release `excluding`."""
    return sum(
        formation.total
        for release_id in state.app_formations.get(app_id, {})
        if release_id != excluding and (formation := state.formation(app_id, release_id))
    )


def expanded(state: State, formation: Formation) -> JSON | None:
    """Flynn SEED's ExpandedFormation for `?expand=true` and `?active=true`: the app and the
    artifact are partial, the release has no created_at (Flynn: controller/formation.go
    scanExpandedFormation reads only those columns). None when the app, the release or its
    artifact is missing (the SQL joins them)."""
    app = state.apps.get(formation.app_id) or state.deleted_apps.get(formation.app_id)
    release = state.releases.get(formation.release_id)
    artifact = state.artifacts.get(release.artifact_id or "") if release else None
    if app is None or release is None or artifact is None:
        return None
    doc: JSON = {
        "app": {"id": app.id, "name": app.name, "meta": None},
        "release": {k: v for k, v in release.to_json().items() if k != "created_at"},
        "artifact": {"id": artifact.id, "type": artifact.type, "uri": artifact.uri},
    }
    return _with_counts(doc, formation)


def streamed(state: State, formation: Formation) -> JSON:
    """The ExpandedFormation the formation stream sends: full app, release and artifact, and a
    deleted formation without processes. A deleted app is just its id (Flynn:
    controller/formation.go expandFormation); a deleted release is still itself."""
    app = state.apps.get(formation.app_id)
    release_id = formation.release_id
    release = state.releases.get(release_id) or state.deleted_releases.get(release_id)
    artifact = state.artifacts.get(release.artifact_id or "") if release else None
    doc: JSON = {"app": app.to_json() if app else {"id": formation.app_id, "meta": None}}
    if release is not None:
        doc["release"] = release.to_json()
    if artifact is not None:
        doc["artifact"] = artifact.to_json()
    return _with_counts(doc, formation)


def _with_counts(doc: JSON, formation: Formation) -> JSON:
    if formation.processes:  # omitempty: a deleted formation has none
        doc["processes"] = formation.processes
    doc["updated_at"] = format_time(formation.updated_at)
    return doc


def changed_formations(state: State, seen: dict[FormationKey, Formation]) -> list[Formation]:
    """The formations that are not what `seen` holds, oldest change first; `seen` is updated.

    Formations are immutable values replaced on every change, so identity is enough.
    """
    changed = [f for key, f in state.formations.items() if seen.get(key) is not f]
    for formation in changed:
        seen[(formation.app_id, formation.release_id)] = formation
    return sorted(changed, key=_newest_updated)
