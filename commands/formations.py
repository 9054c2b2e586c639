"""Formation commands and their deciders: put (SEED's full replace) and delete (soft)."""

from __future__ import annotations

from datetime import datetime

import attrs

from commands.apps import protected_error, require_app
from commands.errors import NotFoundError, ValidationError
from commands.types import handler, handlers
from domain.events import Event, FormationScaled
from domain.objects import JSON, App, Formation
from projections.formations import app_process_count
from projections.state import State


@attrs.frozen
class PutFormation:
    """Set a formation's process counts; types not given are dropped (SEED replaces)."""

    app: str  # id or name
    release_id: str
    now: datetime
    processes: dict[str, int] = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, doc: JSON, *, app: str, release_id: str, now: datetime) -> PutFormation:
        """From a schema-checked body; `app` and `release` in it are overwritten by the path."""
        return cls(app=app, release_id=release_id, now=now, processes=doc.get("processes") or {})


@attrs.frozen
class DeleteFormation:
    app: str
    release_id: str
    now: datetime


def put_formation(state: State, cmd: PutFormation) -> list[Event]:
    # Flynn SEED: controller/formation.go PutFormation, checks in this order.
    app = require_app(state, cmd.app)
    release = state.releases.get(cmd.release_id)
    if release is None:
        raise NotFoundError(f"release {cmd.release_id!r} not found")
    if not release.artifact_id:
        raise ValidationError("", "release is not deployable")
    invalid = [name for name in cmd.processes if name not in release.processes]
    if invalid:
        raise ValidationError(
            "",
            "Requested formation includes process types that do not exist in release. "
            f"Invalid process types: [{', '.join(invalid)}]",
        )
    if sum(cmd.processes.values()) == 0:
        _check_not_stopping(state, app, release.id)
    current = state.formation(app.id, release.id)
    return [FormationScaled(app.id, release.id, dict(cmd.processes), _previous(current))]


def delete_formation(state: State, cmd: DeleteFormation) -> list[Event]:
    app = require_app(state, cmd.app)
    current = state.formation(app.id, cmd.release_id)
    if current is None:
        raise NotFoundError(f"formation {app.id}:{cmd.release_id} not found")
    _check_not_stopping(state, app, cmd.release_id)
    return [FormationScaled(app.id, cmd.release_id, None, _previous(current))]


def _previous(current: Formation | None) -> dict[str, int] | None:
    # Go's omitempty drops an empty prev_processes map as well as a missing one.
    return dict(current.processes) if current is not None and current.processes else None


def _check_not_stopping(state: State, app: App, release_id: str) -> None:
    """A protected app may not go from running processes to none (a deploy, which starts the
    new release before it stops the old one, never does)."""
    if not app.protected:
        return
    current = state.formation(app.id, release_id)
    if (
        current is not None
        and current.total > 0
        and app_process_count(state, app.id, release_id) == 0
    ):
        raise protected_error("scaled to zero")


HANDLERS = handlers(
    handler(PutFormation, put_formation),
    handler(DeleteFormation, delete_formation),
)
