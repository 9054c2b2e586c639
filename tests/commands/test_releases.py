"""Release deletion deciders and fold: the rules Flynn HEAD applies, and what stays behind."""

from datetime import UTC, datetime

import pytest

from commands.apps import DeleteApp, delete_app
from commands.errors import NotFoundError, ValidationError
from commands.jobs import PutJob, put_job
from commands.releases import DeleteRelease, delete_release
from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    DeploymentCreated,
    Event,
    FormationScaled,
    JobStateChanged,
    ReleaseCreated,
    ReleaseDeleted,
)
from domain.objects import App, Deployment, Job, Release
from domain.states import DeploymentStatus, JobState
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)
WEB, API = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


def history(*events: Event) -> State:
    state = State()
    for event in events:
        apply(state, event, T0)
    return state


def app(app_id: str, name: str) -> AppCreated:
    return AppCreated(App(app_id, name, T0, T0))


def release(release_id: str, owner: str | None = WEB, day: int = 1) -> ReleaseCreated:
    created = datetime(2026, 1, day, tzinfo=UTC)
    return ReleaseCreated(Release(release_id, created, "art", app_id=owner))


def two_apps() -> State:
    """web owns r1 (current), r2 and r3; api owns nothing."""
    state = history(app(WEB, "web"), app(API, "api"), release("r1"), release("r2"), release("r3"))
    apply(state, AppReleaseSet(WEB, state.releases["r1"]), T0)
    return state


def test_a_release_of_the_app_is_deleted_with_its_idle_formation():
    """An unused release leaves the app's list and the release lists; a zero formation goes."""
    state = two_apps()
    apply(state, FormationScaled(WEB, "r2", {"web": 0}), T0)
    (event,) = delete_release(state, DeleteRelease("web", "r2", T1))
    assert event == ReleaseDeleted(WEB, "r2")
    assert event.data() == {
        "release_deletion": {
            "app": WEB,
            "release": "r2",
            "remaining_apps": [],
            "deleted_files": [],
        },
        "error": "",
    }
    apply(state, event, T1)
    assert "r2" not in state.app_releases[WEB] and "r2" not in state.releases
    assert state.deleted_releases["r2"].id == "r2"
    assert state.formation(WEB, "r2") is None
    assert state.formations[(WEB, "r2")].updated_at == T1


def test_the_current_a_scaled_up_and_another_apps_release_are_refused():
    """Flynn's "cannot delete current app release"; a scaled-up one says its counts; a release
    the app does not list (another app's, unknown, or already deleted) is not found."""
    state = two_apps()
    apply(state, FormationScaled(WEB, "r2", {"web": 2, "worker": 0}), T0)
    with pytest.raises(ValidationError, match=r"^cannot delete current app release$"):
        delete_release(state, DeleteRelease("web", "r1", T1))
    with pytest.raises(ValidationError, match=r"scaled up \(web=2\): scale it to zero first"):
        delete_release(state, DeleteRelease("web", "r2", T1))
    for app_ref, release_id in [("api", "r3"), ("web", "nope"), ("ghost", "r3")]:
        with pytest.raises(NotFoundError):
            delete_release(state, DeleteRelease(app_ref, release_id, T1))
    apply(state, delete_release(state, DeleteRelease("web", "r3", T1))[0], T1)
    with pytest.raises(NotFoundError):
        delete_release(state, DeleteRelease("web", "r3", T1))


def test_a_release_other_apps_use_stays_for_them():
    """Deleting a release another app set or scaled takes it from this app only."""
    state = two_apps()
    apply(state, release("seed", owner=None), T0)
    apply(state, FormationScaled(WEB, "seed", {}), T0)
    apply(state, AppReleaseSet(API, state.releases["seed"]), T0)
    (event,) = delete_release(state, DeleteRelease("web", "seed", T1))
    assert isinstance(event, ReleaseDeleted) and event.remaining_apps == (API,)
    apply(state, event, T1)
    assert "seed" in state.releases and "seed" not in state.app_releases[WEB]
    assert state.release_apps("seed") == [API]


def test_a_deployment_in_progress_keeps_both_its_releases():
    """Neither the release a deployment leaves nor the one it goes to can be deleted mid-way."""
    state = two_apps()
    deployment = Deployment(
        "d", WEB, "r3", "all-at-once", DeploymentStatus.PENDING, {"web": 1}, 30, T0, "r2"
    )
    apply(state, DeploymentCreated(deployment), T0)
    for release_id in ("r2", "r3"):
        with pytest.raises(ValidationError, match="deployment in progress"):
            delete_release(state, DeleteRelease("web", release_id, T1))


def test_app_deletion_deletes_its_releases_newest_first_and_reports_them():
    """Routes, then a release_deletion per release (newest first), then app_deletion listing
    every release it deleted, as Flynn HEAD's worker; a shared one stays for the other app."""
    state = history(app(WEB, "web"), app(API, "api"), release("r1", day=1), release("r2", day=3))
    apply(state, release("seed", owner=None, day=2), T0)
    apply(state, AppReleaseSet(WEB, state.releases["seed"]), T0)
    apply(state, AppReleaseSet(API, state.releases["seed"]), T0)
    events = delete_app(state, DeleteApp("web", T1))
    assert events[:3] == [
        ReleaseDeleted(WEB, "r2"),
        ReleaseDeleted(WEB, "seed", (API,)),
        ReleaseDeleted(WEB, "r1"),
    ]
    deleted = events[3]
    assert isinstance(deleted, AppDeleted)
    assert [r.id for r in deleted.deleted_releases] == ["r2", "seed", "r1"]
    assert len(deleted.data()["app_deletion"]["deleted_releases"]) == 3
    for event in events:
        apply(state, event, T1)
    assert sorted(state.releases) == ["seed"] and sorted(state.deleted_releases) == ["r1", "r2"]


def test_a_job_of_a_deleted_release_still_reports():
    """The scheduler can still report a job down after its release (and app) were deleted."""
    state = two_apps()
    job = Job("host-1", WEB, "r2", JobState.UP, T0, T0, type="web")
    apply(state, JobStateChanged(job), T0)
    for event in delete_app(state, DeleteApp("web", T1)):
        apply(state, event, T1)
    (event,) = put_job(state, PutJob(WEB, "host-1", T1, state="down"))
    assert isinstance(event, JobStateChanged) and event.job.state == "down"
