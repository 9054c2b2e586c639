"""The scheduler against an in-memory log and an in-memory host: formations in, job reports out."""

import asyncio

import orjson

from commands.formations import DeleteFormation
from scheduler import Backoff
from tests.scheduler.world import FakeHost, Machine, World, eventually, now, scheduling

UP_STORY = ["pending", "starting", "up"]


async def test_scaling_up_starts_jobs_reported_pending_starting_up(world: World):
    """web=2, worker=1: three jobs, each recorded pending → starting → up, run with Flynn's env."""
    host = FakeHost(Machine())
    async with scheduling(world, host):
        await world.scale(web=2, worker=1)
        await eventually(lambda: len(world.jobs("up")) == 3)
    assert sorted(j.type for j in world.jobs()) == ["web", "web", "worker"]
    for job in world.jobs():
        assert await world.history(job.id) == UP_STORY
        assert job.id.startswith("fake-") and job.meta["flynn-controller.type"] == job.type
    web = next(s for s in host.started if s.process_type == "web")
    assert web.argv == ("serve",) and web.ports == 1 and web.limits["max_fd"] == 10000
    assert web.env["FLYNN_JOB_ID"] == web.job_id and web.env["FLYNN_PROCESS_TYPE"] == "web"
    assert web.env["FLYNN_APP_ID"] == world.app_id and web.artifact is not None


async def test_scaling_down_stops_the_newest_jobs_first(world: World):
    """web 3 → 1: the two newest jobs go stopping → down; the oldest keeps running."""
    host = FakeHost(Machine())
    async with scheduling(world, host):
        await world.scale(web=3)
        await eventually(lambda: len(world.jobs("up")) == 3)
        oldest = world.jobs()[0].id
        await world.scale(web=1)
        await eventually(lambda: len(world.jobs("down")) == 2)
    assert [j.id for j in world.jobs("up")] == [oldest]
    for job in world.jobs("down"):
        assert await world.history(job.id) == [*UP_STORY, "stopping", "down"]
    assert set(host.machine.running) == {oldest}


async def test_a_crashed_job_is_reported_and_replaced_by_a_new_job(world: World):
    """A process exiting non-zero is `crashed` with its exit status; a new job takes its place."""
    host = FakeHost(Machine())
    async with scheduling(world, host):
        await world.scale(web=2)
        await eventually(lambda: len(world.jobs("up")) == 2)
        victim = world.jobs()[0].id
        host.crash(victim, 3)
        await eventually(lambda: len(world.jobs("up")) == 2 and len(world.jobs("crashed")) == 1)
    crashed = world.model.state.jobs[victim]
    assert (crashed.state, crashed.exit_status) == ("crashed", 3)
    assert len(world.jobs()) == 3 and victim in host.forgotten


async def test_restarts_back_off_as_they_pile_up(world: World):
    """After `thresholds[0]` restarts in a row the replacement waits in `pending` first."""
    host = FakeHost(Machine())
    backoff = Backoff(delays=(0.0, 0.3, 0.3), thresholds=(2, 4))
    async with scheduling(world, host, backoff):
        await world.scale(worker=1)
        for crashes in range(1, 4):
            await eventually(lambda: len(world.jobs("up")) == 1)
            host.crash(world.jobs("up")[0].id)

            def crashed_times(n: int = crashes) -> bool:
                return len(world.jobs("crashed")) == n

            await eventually(crashed_times)
        await eventually(lambda: len(world.jobs("up")) == 1)
    crashed, third = world.jobs("crashed")[-1], world.jobs("up")[0]
    times = {
        (r.object_id, orjson.loads(r.data)["state"]): r.created_at
        async for r in world.store.read()
        if r.object_type == "job"
    }
    waited = times[(third.id, "starting")] - times[(crashed.id, "crashed")]
    assert waited.total_seconds() >= 0.3
    assert len(world.jobs()) == 4


def test_backoff_follows_flynns_schedule_and_resets_after_a_long_run():
    """0 s below 5 restarts, 10 s below 15, then 30 s; 5 minutes up starts the count over."""
    backoff = Backoff()
    assert [backoff.delay(n) for n in (0, 4, 5, 14, 15, 100)] == [0, 0, 10, 10, 30, 30]
    assert backoff.replace(7, up_for=12.0) == (8, 10)
    assert backoff.replace(7, up_for=None) == (8, 10)
    assert backoff.replace(7, up_for=301.0) == (1, 0)


async def test_a_killed_job_is_stopped_and_replaced_at_once(world: World):
    """DELETE of a job (stopping) stops it on the host, reports it down, starts another."""
    host = FakeHost(Machine())
    async with scheduling(world, host, Backoff(delays=(5, 5, 5))):
        await world.scale(web=1)
        await eventually(lambda: len(world.jobs("up")) == 1)
        victim = world.jobs()[0].id
        await world.kill(victim)
        await eventually(lambda: len(world.jobs("up")) == 1 and world.jobs("up")[0].id != victim)
    assert await world.history(victim) == [*UP_STORY, "stopping", "down"]
    assert victim in host.stopped


async def test_a_pending_job_killed_before_its_start_never_runs(world: World):
    """A replacement waiting out its backoff and killed meanwhile is down, never started."""
    host = FakeHost(Machine())
    async with scheduling(world, host, Backoff(delays=(5, 5, 5))):
        await world.scale(web=1)
        await eventually(lambda: len(world.jobs("up")) == 1)
        host.crash(world.jobs("up")[0].id)
        await eventually(lambda: len(world.jobs("pending")) == 1)
        waiting = world.jobs("pending")[0].id
        await world.kill(waiting)
        await eventually(lambda: len(world.jobs("up")) == 1)
    assert await world.history(waiting) == ["pending", "down"]
    assert waiting not in {s.job_id for s in host.started}


async def test_deleting_the_app_stops_every_job(world: World):
    """App deletion: the formation jobs and a running one-off job all end down."""
    host = FakeHost(Machine())
    async with scheduling(world, host):
        await world.scale(web=2, worker=1)
        one_off = await world.run_job("sleep", "100")
        await eventually(lambda: len(world.jobs("up")) == 4)
        await world.delete_app()
        await eventually(lambda: len(world.jobs("down")) == 4)
    assert host.machine.running == {}
    assert await world.history(one_off) == [*UP_STORY, "stopping", "down"]


async def test_deleting_a_formation_stops_its_jobs(world: World):
    """A deleted formation asks for nothing: its jobs are stopped."""
    host = FakeHost(Machine())
    async with scheduling(world, host):
        await world.scale(worker=2)
        await eventually(lambda: len(world.jobs("up")) == 2)
        await world.do(DeleteFormation(world.app_id, world.release_id, now()))
        await eventually(lambda: len(world.jobs("down")) == 2)
    assert host.machine.running == {}


async def test_a_one_off_job_runs_once(world: World):
    """RunJob's pending job is started with its own command, and not restarted when it ends."""
    host = FakeHost(Machine())
    async with scheduling(world, host):
        job_id = await world.run_job("echo", "hi")
        await eventually(lambda: world.model.state.jobs[job_id].state == "up")
        host.crash(job_id, 0)
        await eventually(lambda: world.model.state.jobs[job_id].state == "down")
        await asyncio.sleep(0.05)  # a few passes: none starts it again
    assert await world.history(job_id) == [*UP_STORY, "down"]
    assert [s.argv for s in host.started] == [("echo", "hi")]
    assert world.model.state.jobs[job_id].exit_status == 0


async def test_a_job_the_host_cannot_run_fails_with_the_host_error(world: World):
    """A host refusing a job: `failed` with its host_error, then replaced (with backoff)."""
    host = FakeHost(Machine())
    host.refused.add("worker")
    async with scheduling(world, host):
        await world.scale(worker=1)
        await eventually(lambda: len(world.jobs("failed")) >= 1)
    failed = world.jobs("failed")[0]
    assert failed.host_error == "refused" and failed.exit_status is None
    assert await world.history(failed.id) == ["pending", "starting", "failed"]


async def test_a_restarted_scheduler_adopts_recovers_and_cleans_up(world: World):
    """After a restart: running jobs are adopted (not started again), one that ended meanwhile
    is reported and replaced, a lost one is marked down, an orphan process is stopped."""
    machine = Machine()
    async with scheduling(world, FakeHost(machine)):
        await world.scale(web=3)
        await eventually(lambda: len(world.jobs("up")) == 3)
    kept, ended, lost = (j.id for j in world.jobs())
    del machine.running[ended]
    machine.ended[ended] = 2
    del machine.running[lost]  # gone without a trace (the machine rebooted, say)
    machine.running["fake-orphan"] = machine.running[kept]
    host = FakeHost(machine)
    async with scheduling(world, host):
        await eventually(lambda: len(world.jobs("up")) == 3 and "fake-orphan" in host.forgotten)
    assert world.model.state.jobs[kept].state == "up" and kept not in host.stopped
    assert (world.model.state.jobs[ended].state, world.model.state.jobs[ended].exit_status) == (
        "crashed",
        2,
    )
    assert world.model.state.jobs[lost].state == "down"
    assert world.model.state.jobs[lost].host_error.startswith("lost")
    assert len(host.started) == 2  # the replacements of `ended` and `lost`, nothing else
    assert set(machine.running) == {j.id for j in world.jobs("up")}
