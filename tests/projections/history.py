"""Histories for the projection tests: commands through the real Dispatcher, and `Emit`
(a command recording given events) for the kinds these tests only need as data."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st

from commands import dispatch
from commands.apps import CreateApp, DeleteApp, SetAppRelease, UpdateApp
from commands.dispatch import Dispatcher
from commands.errors import DomainError
from commands.releases import CreateArtifact, CreateRelease, DeleteRelease
from commands.types import handler, handlers
from domain.events import (
    DeploymentCreated,
    DeploymentStatusChanged,
    DomainMigrated,
    Event,
    FormationScaled,
    JobStateChanged,
    ProviderCreated,
    ResourceCreated,
    ResourceDeleted,
    RouteCreated,
    RouteDeleted,
    RouteUpdated,
)
from domain.objects import Deployment, DomainMigration, Job, Provider, Resource, Route
from domain.states import JOB_STATES, DeploymentStatus
from eventstore.memory import InMemoryEventStore
from eventstore.record import RecordedEvent
from eventstore.store import EventStore
from projections.memory import MemoryReadModel
from projections.providers import exclusive_resources
from projections.state import State

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DOMAIN = "evenflow.test"


def uid(n: int) -> str:
    """A canonical uuid made from `n`."""
    return str(uuid.UUID(int=n))


@attrs.frozen
class Emit:
    events: tuple[Event, ...]
    now: datetime


def emit(state: State, cmd: Emit) -> list[Event]:
    return list(cmd.events)


HANDLERS = handlers(dispatch.HANDLERS, handler(Emit, emit))


class History:
    """A Dispatcher over `store` and its in-memory model, with a clock and an id counter."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.model = MemoryReadModel()
        self.dispatcher = Dispatcher(store, self.model, HANDLERS)
        self.ticks = 0
        self.ids = 0

    async def __aenter__(self) -> History:
        self.dispatcher.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispatcher.stop()

    def now(self) -> datetime:
        # Two commands per second: many created_at ties, to exercise the id tie-break.
        self.ticks += 1
        return T0 + timedelta(seconds=self.ticks // 2)

    def new_id(self) -> str:
        self.ids += 1
        return uid(self.ids)

    async def do(self, command: Any) -> list[RecordedEvent]:
        """Dispatch `command`; a refused one (a domain error) records nothing."""
        try:
            return await self.dispatcher.handle(command)
        except DomainError:
            return []

    async def emit(self, *events: Event) -> list[RecordedEvent]:
        return await self.do(Emit(events, self.now()))


def _pick(keys: Any, index: int) -> Any:
    ordered = sorted(keys)
    return ordered[index % len(ordered)] if ordered else None


_idx = st.integers(0, 3)  # few choices: steps meet the same objects often
_processes = st.dictionaries(st.sampled_from(["web", "worker"]), st.integers(0, 3), max_size=2)
#: One step of a random history; indexes pick among what exists when the step runs.
OPS = st.one_of(
    st.tuples(st.just("create_app"), st.booleans(), st.booleans()),
    st.tuples(st.just("update_app"), _idx, st.dictionaries(st.sampled_from("ab"), st.just("1"))),
    st.tuples(st.just("unprotect"), _idx),
    st.tuples(st.just("artifact"), st.integers(0, 3)),
    st.tuples(st.just("release"), _idx, st.none() | _idx),
    st.tuples(st.just("set_release"), _idx, _idx),
    st.tuples(st.just("delete_release"), _idx, _idx),
    st.tuples(st.just("scale"), _idx, _idx, st.none() | _processes),
    st.tuples(st.just("job"), _idx, _idx, st.sampled_from(["starting", "up", "down", "crashed"])),
    st.tuples(st.just("route"), _idx, st.sampled_from(["http", "tcp"])),
    st.tuples(st.just("update_route"), _idx),
    st.tuples(st.just("delete_route"), _idx),
    st.tuples(st.just("provider"), st.integers(0, 2)),
    st.tuples(st.just("resource"), _idx, st.lists(_idx, max_size=2)),
    st.tuples(st.just("delete_resource"), _idx),
    st.tuples(st.just("deploy"), _idx, _idx),
    st.tuples(st.just("progress"), _idx, st.sampled_from(["running", "complete", "failed"])),
    st.tuples(st.just("migrate_domain"), st.booleans()),
    st.tuples(st.just("delete_app"), _idx),
    st.tuples(st.just("project")),
)


async def prelude(h: History) -> None:
    """Something for every step to work on: three apps, two artifacts, three releases (one
    per app of the first two, one seed), two formations, a job, a route, a deployment, a
    provider, and a resource shared by two apps."""
    for op in [
        ("create_app", False, True),
        ("create_app", False, False),
        ("create_app", False, True),
        ("artifact", 0),
        ("artifact", 1),
        ("release", 0, 0),
        ("release", 1, 1),
        ("release", 0, None),
        ("scale", 0, 0, {"web": 1}),
        ("scale", 1, 1, {"web": 2}),
        ("job", 0, 0, "starting"),
        ("route", 1, "tcp"),
        ("deploy", 0, 0),
        ("provider", 0),
        ("resource", 0, [0, 1]),
    ]:
        await run_op(h, op)


async def run_op(h: History, op: tuple[Any, ...]) -> None:
    """Carry out one step of OPS (a "project" step is the caller's business)."""
    s = h.model.state
    kind, *args = op
    now = h.now()
    app_id = _pick(s.apps, args[0]) if args and isinstance(args[0], int) else None
    match kind:
        case "create_app":
            domain = DOMAIN if args[1] else None
            await h.do(
                CreateApp(
                    h.new_id(),
                    now,
                    protected=args[0],
                    default_route_domain=domain,
                    route_id=h.new_id(),
                )
            )
        case "update_app" if app_id:
            await h.do(UpdateApp(app_id, now, meta=args[1]))
        case "unprotect" if app_id:
            await h.do(UpdateApp(app_id, now, protected=False))
        case "artifact":
            await h.do(CreateArtifact(h.new_id(), "docker", f"https://example.com/{args[0]}", now))
        case "release":
            owner = None if args[1] is None else _pick(s.apps, args[1])
            await h.do(
                CreateRelease(
                    h.new_id(),
                    now,
                    artifact_id=_pick(s.artifacts, args[0]),
                    processes={"web": {"cmd": ["run"]}},
                    app=owner,
                )
            )
        case "set_release" if app_id and s.releases:
            await h.do(SetAppRelease(app_id, _pick(s.releases, args[1]), now))
        case "delete_release" if app_id and s.app_releases.get(app_id):
            await h.do(DeleteRelease(app_id, _pick(s.app_releases[app_id], args[1]), now))
        case "scale" if app_id and s.releases:
            release_id = _pick(s.releases, args[1])
            current = s.formation(app_id, release_id)
            prev = None if current is None else current.processes
            await h.emit(FormationScaled(app_id, release_id, args[2], prev))
        case "job":
            await _job(h, args[0], args[1], args[2], now)
        case "route" if app_id:
            n = h.ids
            route = Route(
                args[1],
                h.new_id(),
                f"controller/apps/{app_id}",
                f"s{n}",
                now,
                now,
                domain=f"r{n}.{DOMAIN}" if args[1] == "http" else "",
                path="/" if args[1] == "http" else "",
                port=n if args[1] == "tcp" else 0,
            )
            await h.emit(RouteCreated(route))
        case "update_route" if s.routes:
            updated = s.routes[_pick(s.routes, args[0])]
            updated = attrs.evolve(updated, updated_at=now, sticky=not updated.sticky)
            await h.emit(RouteUpdated(updated))
        case "delete_route" if s.routes:
            await h.emit(RouteDeleted(s.routes[_pick(s.routes, args[0])]))
        case "provider" if f"p{args[0]}" not in s.provider_ids_by_name:
            name = f"p{args[0]}"
            await h.emit(ProviderCreated(Provider(h.new_id(), name, f"http://{name}", now, now)))
        case "resource" if s.providers:
            apps = tuple(dict.fromkeys(a for i in args[1] if (a := _pick(s.apps, i))))
            resource = Resource(
                h.new_id(), _pick(s.providers, args[0]), now, "ext", {"URL": "postgres://x"}, apps
            )
            await h.emit(
                *([ResourceCreated(resource, a) for a in apps] or [ResourceCreated(resource)])
            )
        case "delete_resource" if s.resources:
            resource = s.resources[_pick(s.resources, args[0])]
            deleted = [ResourceDeleted(resource, a) for a in resource.apps]
            await h.emit(*(deleted or [ResourceDeleted(resource)]))
        case "deploy" if app_id and s.releases:
            app = s.apps[app_id]
            deployment = Deployment(
                h.new_id(),
                app_id,
                _pick(s.releases, args[1]),
                app.strategy,
                DeploymentStatus.PENDING,
                {"web": 1},
                30,
                now,
                app.release_id,
            )
            await h.emit(DeploymentCreated(deployment))
        case "progress":
            running = [d for d in s.deployments.values() if not d.finished]
            if running:
                d = running[args[0] % len(running)]
                error = "boom" if args[1] == "failed" else ""
                await h.emit(
                    DeploymentStatusChanged(
                        d.app_id, d.id, d.new_release_id, args[1], "web", "up", error
                    )
                )
        case "migrate_domain":
            finished = now if args[0] else None
            migration = DomainMigration(h.new_id(), "old.test", DOMAIN, now, finished_at=finished)
            await h.emit(DomainMigrated(migration))
        case "delete_app" if app_id:
            await h.do(DeleteApp(app_id, now, tuple(r.id for r in exclusive_resources(s, app_id))))


async def _job(h: History, index: int, app_index: int, state: str, now: datetime) -> None:
    s = h.model.state
    job_id = f"host-{uid(10_000 + index)}"
    job = s.jobs.get(job_id)
    if job is None:
        app_id, release_id = _pick(s.apps, app_index), _pick(s.releases, app_index)
        if not app_id or not release_id:
            return
        job = Job(job_id, app_id, release_id, JOB_STATES[state], now, now, type="web")
    await h.emit(JobStateChanged(attrs.evolve(job, state=JOB_STATES[state], updated_at=now)))


def recorded(ops: list[tuple[Any, ...]]) -> list[RecordedEvent]:
    """The log a history of `ops` leaves (on the in-memory store)."""

    async def run() -> list[RecordedEvent]:
        store = InMemoryEventStore()
        async with History(store) as h:
            await prelude(h)
            for op in ops:
                await run_op(h, op)
        return [record async for record in store.read()]

    return asyncio.run(run())
