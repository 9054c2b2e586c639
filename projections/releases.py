"""Release and artifact queries over State: lookups and lists, newest first."""

from __future__ import annotations

from domain.objects import Artifact, Release
from projections.order import newest_first
from projections.state import State


def release(state: State, release_id: str) -> Release | None:
    """A live release (a deleted one is not found)."""
    return state.releases.get(release_id)


def all_releases(state: State) -> list[Release]:
    """Every live release, newest first (Flynn: releaseListQuery)."""
    return newest_first(state.releases.values())


def app_releases(state: State, app_id: str) -> list[Release]:
    """The releases the app lists (its own, and those it set as current or scaled), newest
    first. A deleted release is left out even where an app still lists it, as Flynn's
    releaseAppListQuery asks `deleted_at IS NULL`."""
    releases = state.releases
    listed = state.app_releases.get(app_id, {})
    return newest_first(releases[r] for r in listed if r in releases)


def artifact(state: State, artifact_id: str) -> Artifact | None:
    return state.artifacts.get(artifact_id)


def artifact_by_key(state: State, type_: str, uri: str) -> Artifact | None:
    """The artifact of this type and URI (Flynn: artifact_select_by_type_and_uri)."""
    found = state.artifact_ids_by_key.get((type_, uri))
    return None if found is None else state.artifacts[found]


def all_artifacts(state: State) -> list[Artifact]:
    """Every artifact, newest first (Flynn: artifactListQuery)."""
    return newest_first(state.artifacts.values())
