"""The scheduler's job reports name their cause: the scale (or the one-off job's request)
that made the job, and the request at the origin of the chain."""

import uuid
from collections.abc import AsyncIterator

import pytest

from commands.formations import PutFormation
from commands.jobs import RunJob
from domain.actors import Actor
from domain.codec import actor_of
from eventstore.record import RecordedEvent
from tests.scheduler.world import FakeHost, Machine, World, eventually, now, scheduling

OPS = Actor(key="ops", request_id="req-scale", address="10.0.0.1")


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    await w.setup()
    yield w
    await w.close()


async def records(world: World) -> list[RecordedEvent]:
    return [r async for r in world.store.read()]


async def test_a_scaled_jobs_reports_name_the_scale_and_its_request(world: World):
    """web=1 asked by request req-scale: the job's first report is caused by the scale
    event, the later ones by that first report, all correlated with req-scale."""
    command = PutFormation(world.app_id, world.release_id, now(), {"web": 1})
    (scaled,) = await world.dispatcher.handle(command, actor=OPS)
    async with scheduling(world, FakeHost(Machine())):
        await eventually(lambda: len(world.jobs("up")) == 1)
    reports = [r for r in await records(world) if r.object_type == "job"]
    assert len(reports) == 3
    actors = [actor_of(r) for r in reports]
    first, *later = actors
    assert first == Actor(component="scheduler", causation_id=scaled.id, correlation_id="req-scale")
    for actor in later:
        assert actor == Actor(
            component="scheduler", causation_id=reports[0].id, correlation_id="req-scale"
        )


async def test_a_one_off_jobs_reports_name_the_request_that_ran_it(world: World):
    """A one-off job asked by request req-run: its reports are caused by the run's event."""
    job_id = f"fake-{uuid.uuid4()}"
    command = RunJob(world.app_id, world.release_id, job_id, now(), cmd=("true",))
    runner = Actor(key="ops", request_id="req-run")
    (ran,) = await world.dispatcher.handle(command, actor=runner)
    async with scheduling(world, FakeHost(Machine())):
        await eventually(lambda: world.model.state.jobs[job_id].state == "up")
    reports = [r for r in await records(world) if r.object_id == job_id and r.id > ran.id]
    assert reports
    for record in reports:
        assert actor_of(record) == Actor(
            component="scheduler", causation_id=ran.id, correlation_id="req-run"
        )
