"""A log, its fold and a dispatcher in memory, an in-memory host, and a scheduler on top.

`FakeHost` implements the host interface with no processes at all: its jobs run until the
test crashes them (or the scheduler stops them). Its `Machine` outlives it, so a new host on
the same machine recovers what the old one ran, as a restarted service would.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

from commands.apps import CreateApp, DeleteApp
from commands.dispatch import Dispatcher
from commands.formations import PutFormation
from commands.jobs import KillJob, RunJob
from commands.releases import CreateArtifact, CreateRelease
from domain.objects import Job
from eventstore.memory import InMemoryEventStore
from host.interface import AttachError, Attachment, AttachRequest, HostEvent, JobSpec
from projections.memory import MemoryReadModel
from scheduler import Backoff, Scheduler

FAST = Backoff(delays=(0.0, 0.2, 0.4), thresholds=(2, 4))


def now() -> datetime:
    return datetime.now(UTC)


@attrs.define
class Machine:
    """What survives a host: the jobs that run, and how the others ended meanwhile."""

    running: dict[str, JobSpec] = attrs.field(factory=dict)
    ended: dict[str, int] = attrs.field(factory=dict)  # job id -> exit status


class FakeHost:
    def __init__(self, machine: Machine, host_id: str = "fake", *, up: bool = True) -> None:
        self.machine = machine
        self._id = host_id
        self.auto_up = up  # report jobs up as soon as they start
        self.refused: set[str] = set()  # process types this host cannot run
        self.started: list[JobSpec] = []
        self.stopped: list[str] = []
        self.forgotten: list[str] = []
        self._queue: asyncio.Queue[HostEvent] = asyncio.Queue()

    @property
    def id(self) -> str:
        return self._id

    async def recover(self) -> list[str]:
        for job_id, status in self.machine.ended.items():
            self._queue.put_nowait(HostEvent(job_id, "exited", status))
        for job_id in self.machine.running:
            self._queue.put_nowait(HostEvent(job_id, "up"))
        return [*self.machine.running, *self.machine.ended]

    async def start(self, spec: JobSpec) -> None:
        self.started.append(spec)
        if spec.process_type in self.refused:
            self._queue.put_nowait(HostEvent(spec.job_id, "exited", error="refused", started=False))
            return
        self.machine.running[spec.job_id] = spec
        if self.auto_up:
            self._queue.put_nowait(HostEvent(spec.job_id, "up"))

    async def stop(self, job_id: str) -> None:
        self.stopped.append(job_id)
        if self.machine.running.pop(job_id, None) is not None:
            self._queue.put_nowait(HostEvent(job_id, "exited", 143))

    async def attach(self, job_id: str, request: AttachRequest) -> Attachment:
        raise AttachError("this host runs no attached jobs")

    async def forget(self, job_id: str) -> None:
        self.forgotten.append(job_id)
        self.machine.ended.pop(job_id, None)

    async def events(self) -> AsyncIterator[HostEvent]:
        while True:
            yield await self._queue.get()

    async def close(self) -> None:
        pass

    def up(self, job_id: str) -> None:
        self._queue.put_nowait(HostEvent(job_id, "up"))

    def crash(self, job_id: str, status: int = 1) -> None:
        """The job's process exits on its own."""
        del self.machine.running[job_id]
        self._queue.put_nowait(HostEvent(job_id, "exited", status))


class World:
    """The write and read side of one in-memory log, with an app and a release to run."""

    def __init__(self) -> None:
        self.store = InMemoryEventStore()
        self.model = MemoryReadModel()
        self.dispatcher = Dispatcher(self.store, self.model)
        self.app_id = str(uuid.uuid4())
        self.release_id = str(uuid.uuid4())

    async def setup(self) -> None:
        self.dispatcher.start()
        artifact = str(uuid.uuid4())
        processes: dict[str, dict[str, Any]] = {
            "web": {"cmd": ["serve"], "ports": [{"port": 8080}]},
            "worker": {"cmd": ["w"]},
        }
        await self.do(CreateApp(self.app_id, now(), name="app"))
        await self.do(CreateArtifact(artifact, "file", "file:///nowhere", now()))
        await self.do(CreateRelease(self.release_id, now(), artifact, processes=processes))

    async def do(self, command: Any) -> None:
        await self.dispatcher.handle(command)

    async def scale(self, **processes: int) -> None:
        await self.do(PutFormation(self.app_id, self.release_id, now(), processes))

    async def run_job(self, *cmd: str) -> str:
        job_id = f"fake-{uuid.uuid4()}"
        await self.do(RunJob(self.app_id, self.release_id, job_id, now(), cmd=cmd))
        return job_id

    async def kill(self, job_id: str) -> None:
        await self.do(KillJob(self.app_id, job_id, now()))

    async def delete_app(self) -> None:
        await self.do(DeleteApp(self.app_id, now()))

    def jobs(self, *states: str, type: str | None = None) -> list[Job]:
        """The app's jobs, oldest first, in one of `states` (any when none are given)."""
        jobs = [self.model.state.jobs[j] for j in self.model.state.app_jobs.get(self.app_id, {})]
        return sorted(
            (j for j in jobs if (not states or j.state in states) and type in (None, j.type)),
            key=lambda j: (j.created_at, j.id),
        )

    async def history(self, job_id: str) -> list[str]:
        """The states the log recorded for a job, in order."""
        return [
            orjson.loads(r.data)["state"]
            async for r in self.store.read()
            if r.object_type == "job" and r.object_id == job_id
        ]

    async def close(self) -> None:
        await self.dispatcher.stop()


@contextlib.asynccontextmanager
async def scheduling(
    world: World, host: FakeHost, backoff: Backoff = FAST
) -> AsyncIterator[Scheduler]:
    """A scheduler running over `world` and `host` until the block ends."""
    scheduler = Scheduler(world.model, world.dispatcher, host, backoff=backoff)
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(condition: Callable[[], object], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)
