"""Deployment commands: create a deployment, and advance one by one step (the deployer's command).

A deployment moves only through `AdvanceDeployment`, whose decider derives the next step from
State alone — the two formations, the jobs the scheduler reported and the deployment's own
events — so a step already taken decides nothing, a restarted deployer carries on where the log
says, and deployers in several processes are serialized by the log. Each step is one append:
a formation change with its `running` events; `complete` with the app release; or `failed`
with its rollback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

import attrs

from commands.apps import require_app
from commands.errors import AlreadyExistsError, ValidationError
from commands.types import handler, handlers
from domain.events import (
    AppReleaseSet,
    DeploymentCreated,
    DeploymentStatusChanged,
    Event,
    FormationScaled,
)
from domain.objects import DEFAULT_DEPLOY_TIMEOUT, DEFAULT_STRATEGY, Deployment
from domain.states import RUNNING_JOB_STATES, DeploymentStatus, JobState
from projections.deployments import (
    deadline,
    jobs_up,
    new_job_failures,
    scale,
    steps,
    targets,
)
from projections.state import DeploymentProgress, State

#: Flynn HEAD (worker/deployment): more new jobs than this going down while scaling up fails it.
MAX_NEW_JOB_FAILURES = 5
ROLLED_BACK = "rolled back: the old formation was restored and the new one removed"
_UP = frozenset({JobState.UP})


@attrs.frozen
class CreateDeployment:
    id: str
    app: str  # id or name
    release_id: str
    now: datetime


@attrs.frozen
class AdvanceDeployment:
    deployment_id: str
    now: datetime  # a wait that began deploy_timeout seconds before this has timed out


@attrs.frozen
class FailDeployment:
    """The deployer cannot decide a deployment's next step (an error it did not foresee): the
    deployment fails, saying why, rather than hold its app's next deployments up for ever."""

    deployment_id: str
    error: str
    now: datetime


def create_deployment(state: State, cmd: CreateDeployment) -> list[Event]:
    app = require_app(state, cmd.app)
    release = state.releases.get(cmd.release_id)
    if release is None:
        raise ValidationError("", f"could not find release with ID {cmd.release_id}")
    # Flynn: the isolate_deploys index. Also checked for an instant deploy, which would
    # otherwise set the app release under a running deployment.
    if app.id in state.deploying:
        raise ValidationError(
            "", "Cannot create deploy, there is already one in progress for this app."
        )
    if cmd.id in state.deployments:
        raise AlreadyExistsError(f'deployment with id "{cmd.id}" already exists')
    deployment = Deployment(
        id=cmd.id,
        app_id=app.id,
        new_release_id=release.id,
        strategy=app.strategy or DEFAULT_STRATEGY,
        status=DeploymentStatus.PENDING,
        processes=scale(state, app.id, app.release_id),
        deploy_timeout=app.deploy_timeout or DEFAULT_DEPLOY_TIMEOUT,
        created_at=cmd.now,
        old_release_id=app.release_id,
    )
    # Nothing runs (first deploy, scaled to zero), or the release already runs (Flynn HEAD):
    # done at once, the release set in the same append.
    if sum(deployment.processes.values()) <= 0 or app.release_id == release.id:
        done = attrs.evolve(deployment, status=DeploymentStatus.COMPLETE, finished_at=cmd.now)
        previous = state.releases.get(app.release_id) if app.release_id else None
        return [AppReleaseSet(app.id, release, previous), DeploymentCreated(done)]
    return [DeploymentCreated(deployment)]


# -- one step of a running deployment ------------------------------------------------


@attrs.frozen
class _Ask:
    """Change a formation; its `running` events (starting/stopping) go in the same append."""

    events: list[Event]
    retiring: bool = False


@attrs.frozen
class _Wait:
    """Wait for the scheduler's job reports, at most deploy_timeout seconds."""

    what: str
    retiring: bool = False


@attrs.frozen
class _View:
    """What a strategy looks at: the deployment, its formations and the jobs up now."""

    state: State
    d: Deployment
    targets: dict[str, int]
    new_scale: dict[str, int]
    old_scale: dict[str, int]
    new_up: Counter[str]
    old_up: Counter[str]

    @classmethod
    def of(cls, state: State, d: Deployment) -> _View:
        def up(release: str | None, states: frozenset[JobState]) -> Counter[str]:
            # Only the formation's types: a one-off job (no type) is nobody's to stop.
            counts = jobs_up(state, d.app_id, release, states)
            return Counter({t: n for t, n in counts.items() if t in d.processes})

        # A new job counts once it is up; an old one until it reports down (a job asked to
        # stop may take its grace period to go).
        new_up, old_up = up(d.new_release_id, _UP), up(d.old_release_id, RUNNING_JOB_STATES)
        return cls(
            state, d, targets(state, d), scale(state, d.app_id, d.new_release_id),
            scale(state, d.app_id, d.old_release_id), new_up, old_up,
        )  # fmt: skip

    def ask(self, new: bool, processes: dict[str, int], counts: dict[str, int]) -> _Ask:
        release = self.d.new_release_id if new else self.d.old_release_id or ""
        job_state = JobState.STARTING if new else JobState.STOPPING
        events: list[Event] = [
            _status(self.d, DeploymentStatus.RUNNING, release, t, job_state)
            for t in sorted(counts)
            for _ in range(max(counts[t], 0))
        ]
        previous = self.state.formation(self.d.app_id, release)
        prev = previous.processes if previous is not None else None
        events.append(FormationScaled(self.d.app_id, release, processes, prev))
        return _Ask(events, retiring=not new and not any(processes.values()))


_Step = _Ask | _Wait | None  # None: every job is where the deployment wants it


def _all_at_once(v: _View) -> _Step:
    """Flynn: start every new job, wait for them all, then stop the old release."""
    if v.new_scale != v.targets:
        return v.ask(True, dict(v.targets), {t: n - v.new_up[t] for t, n in v.targets.items()})
    short = sorted(t for t, n in v.targets.items() if v.new_up[t] < n)
    if short:
        return _Wait(f"{', '.join(short)} jobs of the new release to come up")
    return _retire(v)


def _one_by_one(v: _View) -> _Step:
    """Flynn: type by type in sorted order, one new job up, then one old job down."""
    for t in sorted(v.targets):
        n, o = v.new_scale.get(t, 0), v.old_scale.get(t, 0)
        balanced = max(v.d.processes.get(t, 0) - n, 0)  # the old count that makes up for n
        if v.new_up[t] < n:
            return _Wait(f"a {t} job of the new release to come up")
        if o > balanced:
            return v.ask(False, {**v.old_scale, t: balanced}, {t: o - balanced})
        if v.old_up[t] > o:
            # The last old job of the last type: the new release is all up already.
            return _Wait(f"a {t} job of the old release to stop", not any(v.old_scale.values()))
        if n < v.targets[t]:
            return v.ask(True, {**v.new_scale, t: n + 1}, {t: 1})
    return _retire(v)


def _retire(v: _View) -> _Step:
    """Scale the old release to zero and wait for its jobs to stop; the new one is up."""
    if any(n > 0 for n in v.old_scale.values()):
        return v.ask(False, {t: 0 for t in v.old_scale}, dict(v.old_up))
    if any(n > 0 for n in v.old_up.values()):
        return _Wait("the old release's jobs to stop", retiring=True)
    return None


STRATEGIES: dict[str, Callable[[_View], _Step]] = {
    "all-at-once": _all_at_once,
    "one-by-one": _one_by_one,
}


def advance_deployment(state: State, cmd: AdvanceDeployment) -> list[Event]:
    d = state.deployments.get(cmd.deployment_id)
    p = state.deployment_progress.get(cmd.deployment_id)
    if d is None or p is None:  # unknown, or finished
        return []
    if d.app_id not in state.apps:
        return [_failed(d, "the app was deleted during the deployment")]
    strategy = STRATEGIES.get(d.strategy)
    if strategy is None:
        error = f'deployment strategy "{d.strategy}" is not supported; nothing was changed'
        return [_failed(d, error)]
    v = _View.of(state, d)
    echoes = _echoes(d, p)
    step = strategy(v)
    failures = new_job_failures(p, d)
    if failures > MAX_NEW_JOB_FAILURES and not (step is None or step.retiring):
        return echoes + _rollback(v, f"{failures} jobs of the new release went down while starting")
    if step is None:
        return [*echoes, _release_set(state, d), _status(d, DeploymentStatus.COMPLETE)]
    if isinstance(step, _Ask):
        return echoes + step.events
    if echoes:  # progress: the wait goes on, its clock restarted
        return echoes
    due = deadline(state, d)
    if due is None or cmd.now < due:
        return []
    reason = f"timed out waiting for {step.what} (waited {d.deploy_timeout} seconds)"
    if step.retiring:
        # Flynn #3285: the new release is up and the old one scaled to zero, so the app release
        # follows what runs; rolling back now would stop the working jobs.
        error = f"{reason}; the new release runs and is now the app's release (no rollback)"
        return [_release_set(state, d), _failed(d, error)]
    return _rollback(v, reason)


def fail_deployment(state: State, cmd: FailDeployment) -> list[Event]:
    d = state.deployments.get(cmd.deployment_id)
    if d is None or cmd.deployment_id not in state.deployment_progress:
        return []  # unknown, or finished meanwhile
    return [_failed(d, cmd.error)]


def _echoes(d: Deployment, p: DeploymentProgress) -> list[Event]:
    """SEED: one `up` (`down`) event per new (old) job reported, up to the jobs asked for."""
    events: list[Event] = []
    for (release, job_type, phase), seen in sorted(p.reports.items()):
        if release == d.new_release_id and phase == JobState.UP:
            asked = steps(p, release, job_type, JobState.STARTING)
        elif release == d.old_release_id and phase == JobState.DOWN:
            asked = steps(p, release, job_type, JobState.STOPPING)
        else:
            continue
        missing = min(seen, asked) - steps(p, release, job_type, phase)
        running = DeploymentStatus.RUNNING
        events += [_status(d, running, release, job_type, phase) for _ in range(missing)]
    return events


def _rollback(v: _View, reason: str) -> list[Event]:
    """Restore the old formation, remove the new one, then fail: one append."""
    d = v.d
    events: list[Event] = []
    if v.old_scale != d.processes:
        # Flynn #2807: back to the counts the deployment started from (kept in it), never to
        # the current ones, which a step may have scaled down already.
        old = v.state.formation(d.app_id, d.old_release_id or "")
        prev = old.processes if old is not None else None
        events.append(FormationScaled(d.app_id, d.old_release_id or "", dict(d.processes), prev))
    new = v.state.formation(d.app_id, d.new_release_id)
    if new is not None:
        events.append(FormationScaled(d.app_id, d.new_release_id, None, new.processes))
    return [*events, _failed(d, f"{reason}; {ROLLED_BACK}")]


def _release_set(state: State, d: Deployment) -> AppReleaseSet:
    app = state.apps[d.app_id]
    previous = state.releases.get(app.release_id) if app.release_id else None
    return AppReleaseSet(d.app_id, state.releases[d.new_release_id], previous)


def _failed(d: Deployment, error: str) -> DeploymentStatusChanged:
    return _status(d, DeploymentStatus.FAILED, error=error)


def _status(
    d: Deployment,
    status: DeploymentStatus,
    release: str | None = None,
    job_type: str = "",
    job_state: str = "",
    error: str = "",
) -> DeploymentStatusChanged:
    return DeploymentStatusChanged(
        d.app_id, d.id, release or d.new_release_id, status, job_type, job_state, error
    )


HANDLERS = handlers(
    handler(CreateDeployment, create_deployment),
    handler(AdvanceDeployment, advance_deployment),
    handler(FailDeployment, fail_deployment),
)
