"""The scheduler: makes the jobs a host runs match the formations and one-off jobs of the log.

It follows the read model as the deployer does. Each pass compares what should run (the
formations, the pending one-off jobs) with what its runs stand for, starts what is missing,
stops the surplus (newest first), replaces what ended on its own (with Flynn's restart
backoff; a restart is a new job), and reports every transition as a `PutJob` command — the
same command `PUT /apps/:app/jobs/:job` dispatches — so the log records
`pending → starting → up → stopping → down`, or `crashed`/`failed`.

It is restartable: it reports `starting` before it asks the host to start a job, so whatever
a host runs is live in the log. On start it recovers the host's jobs: it adopts the ones the
log knows as live, stops the ones it does not (orphans), and marks `down` the live jobs no
host runs (lost). Only one scheduler may run against a log at a time (see
service/scheduling.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from commands.dispatch import Dispatcher
from commands.errors import DomainError, NotFoundError, ValidationError
from commands.jobs import PutJob
from domain.actors import Actor
from domain.states import ACTIVE_JOB_STATES, ENDED_JOB_STATES, JOB_STATE_RANK, JobState
from host.interface import Host, HostEvent
from projections import causes, jobs
from projections.memory import MemoryReadModel
from scheduler.backoff import Backoff
from scheduler.desired import Slot, desired, unowned
from scheduler.runs import Phase, Run
from scheduler.specs import SpecError, formation_spec, job_meta, one_off_spec

logger = logging.getLogger(__name__)

#: The longest the scheduler sleeps without looking (a missed wake-up, a clock jump).
MAX_SLEEP = 5.0
#: After the log was unavailable or kept moving: look again this much later.
RETRY_AFTER = 1.0
LOST = "lost: no host runs this job any more"
#: The scheduler's name in its events' actors.
COMPONENT = "scheduler"


class Scheduler:
    def __init__(
        self,
        model: MemoryReadModel,
        dispatcher: Dispatcher,
        host: Host,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.dispatcher = dispatcher
        self.host = host
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.runs: dict[str, Run] = {}
        self._owed: dict[Slot, list[tuple[int, float]]] = {}  # restarts due: (count, run_at)
        self._host_events: list[HostEvent] = []
        self._wake = asyncio.Event()
        self._scanned = -1  # the read model generation last scanned for unowned jobs
        self._again = False  # a run stopped or ended during the pass: count formations again
        self.restarts = 0  # jobs replaced after ending on their own (for the metrics)

    async def run(self) -> None:
        """Recover the host's jobs, then reconcile whenever the log moves, the host reports
        or a delayed start is due; forever."""
        await self.recover()
        listener = asyncio.create_task(self._listen_host())
        try:
            while True:
                seen = self.model.generation
                self._wake.clear()
                try:
                    wake_in = await self.reconcile()
                except DomainError as exc:  # the log is unavailable or kept moving
                    logger.warning("scheduler: %s; looking again in %s s", exc.message, RETRY_AFTER)
                    wake_in = RETRY_AFTER
                if listener.done():
                    listener.result()  # a host whose events fail fails the scheduler
                if self.model.generation != seen or self._again:
                    continue  # no await since the check: a change cannot slip by unseen
                await self._sleep(seen, min(wake_in or MAX_SLEEP, MAX_SLEEP))
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _sleep(self, seen: int, timeout: float) -> None:
        """Until the log moves past generation `seen`, the host reports, or `timeout` passes."""
        waits = [
            asyncio.create_task(self._log_moved(seen)),
            asyncio.create_task(self._wake.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def recover(self) -> None:
        """Adopt the host's jobs that the log knows as live; stop the others (orphans)."""
        now = self.clock()
        for job_id in await self.host.recover():
            job = jobs.job(self.model.state, job_id)
            if job is None or job.state not in ACTIVE_JOB_STATES:
                logger.info("scheduler: stopping %s, which the log does not know as live", job_id)
                self.runs[job_id] = Run(job_id, "", "", None, _now(), Phase.STOPPING, orphan=True,
                                        on_host=True, stop_requested=True)  # fmt: skip
                await self.host.stop(job_id)
                continue
            run = self.runs[job_id] = Run.of_job(job, now)
            run.phase, run.on_host = Phase.STARTING, True  # up again once the host says so

    async def reconcile(self) -> float | None:
        """One pass; returns in how many seconds a delayed start is due (None: none is)."""
        self._again = False
        self._take_host_events()
        # Ends first: a crash owes a restart (with its backoff) before formations are counted.
        for run in [r for r in self.runs.values() if r.phase is Phase.ENDED]:
            await self._advance(run)
        await self._adopt_unowned()
        await self._scale()
        for run in list(self.runs.values()):
            if self.runs.get(run.job_id) is run:
                await self._advance(run)
        now = self.clock()
        due = [r.run_at - now for r in self.runs.values() if r.phase is Phase.WAITING]
        return min((d for d in due if d > 0), default=None)

    # -- listening ---------------------------------------------------------------------

    async def _log_moved(self, seen: int) -> None:
        # Compared when the task starts: a change folded before that is not missed.
        while self.model.generation == seen:
            await self.model.changed()

    async def _listen_host(self) -> None:
        async for event in self.host.events():
            self._host_events.append(event)
            self._wake.set()

    def _take_host_events(self) -> None:
        events, self._host_events = self._host_events, []
        for event in events:
            run = self.runs.get(event.job_id)
            if run is None or run.phase is Phase.ENDED:
                continue
            if event.kind == "exited":
                run.phase, run.end = Phase.ENDED, event
            elif run.phase is Phase.STARTING:
                run.phase, run.up_at = Phase.UP, self.clock()

    # -- what should run ---------------------------------------------------------------

    async def _adopt_unowned(self) -> None:
        """Pending jobs nobody runs yet become runs; live jobs nobody runs are lost."""
        if self._scanned == self.model.generation:
            return
        self._scanned = self.model.generation
        pending, lost = unowned(self.model.state, self.runs)
        for job in pending:
            self.runs[job.id] = Run.of_job(job, self.clock())
        for job in lost:
            logger.info("scheduler: %s (%s) is lost; marking it down", job.id, job.state)
            down = PutJob(job.app_id, job.id, _now(), JobState.DOWN, host_error=LOST)
            await self._dispatch(down)

    async def _scale(self) -> None:
        state = self.model.state
        wanted = desired(state)
        live: dict[Slot, list[Run]] = {}
        for run in list(self.runs.values()):
            if run.slot is not None and run.live and not run.orphan:
                live.setdefault(run.slot, []).append(run)
            elif run.slot is None and run.live and run.app_id not in state.apps:
                await self._stop(run)  # a one-off job of a deleted app
        for slot in sorted(wanted.keys() | live.keys()):
            runs = sorted(live.get(slot, []), key=lambda r: (r.created_at, r.job_id), reverse=True)
            surplus = len(runs) - wanted.get(slot, 0)
            for run in runs[: max(surplus, 0)]:  # the newest first
                await self._stop(run)
            for _ in range(-surplus):
                self._add(slot)
        for slot in [s for s in self._owed if s not in wanted]:
            del self._owed[slot]

    def _add(self, slot: Slot) -> None:
        owed = self._owed.get(slot)
        restarts, run_at = owed.pop(0) if owed else (0, self.clock())
        job_id = f"{self.host.id}-{uuid.uuid4()}"
        self.runs[job_id] = Run(job_id, slot[0], slot[1], slot, _now(), restarts=restarts,
                                run_at=run_at)  # fmt: skip

    async def _stop(self, run: Run) -> None:
        run.stop_requested, self._again = True, True
        if run.phase is Phase.WAITING:
            run.phase = Phase.ENDED  # the host never had it
        else:
            run.phase = Phase.STOPPING
            await self.host.stop(run.job_id)

    # -- one run -----------------------------------------------------------------------

    async def _advance(self, run: Run) -> None:
        job = jobs.job(self.model.state, run.job_id)
        logged = job.state if job is not None else None
        if run.orphan:
            if run.phase is Phase.ENDED:
                await self._drop(run)
            return
        moved_on = logged in ENDED_JOB_STATES or logged == JobState.STOPPING
        if moved_on and run.phase not in (Phase.ENDED, Phase.STOPPING):
            await self._stop(run)  # stopped by someone else: a kill
        if run.phase is Phase.ENDED:
            await self._finish(run, logged)
            return
        if run.phase is Phase.WAITING and logged is None:
            if not await self._record_new(run):
                return
            logged = JobState.PENDING
        if logged is not None and JOB_STATE_RANK[logged] < JOB_STATE_RANK[run.report_state()]:
            await self._report(run, run.report_state())
        if run.phase is Phase.WAITING and self.clock() >= run.run_at:
            await self._start(run)

    async def _start(self, run: Run) -> None:
        if not await self._report(run, JobState.STARTING):
            return  # the job moved on meanwhile (killed): the next pass sees it
        state = self.model.state
        try:
            if run.slot is not None:
                spec = formation_spec(state, run.job_id, run.slot)
            else:
                spec = one_off_spec(state, state.jobs[run.job_id])
        except SpecError as exc:
            run.phase, run.end = Phase.ENDED, _not_started(run, str(exc))
            return
        run.phase, run.on_host = Phase.STARTING, True
        try:
            await self.host.start(spec)
        except Exception as exc:  # a host that refuses at once: the job's host error
            logger.exception("scheduler: the host refused %s", run.job_id)
            run.phase, run.end = Phase.ENDED, _not_started(run, str(exc) or repr(exc))

    async def _finish(self, run: Run, logged: JobState | None) -> None:
        final, exit_status, error = run.outcome()
        if logged is not None and logged not in ENDED_JOB_STATES:
            await self._report(run, final, exit_status, error)
        if run.slot is not None and not run.stop_requested:
            up_for = None if run.up_at is None else self.clock() - run.up_at
            restarts, delay = self.backoff.replace(run.restarts, up_for)
            self._owed.setdefault(run.slot, []).append((restarts, self.clock() + delay))
            self.restarts += 1
            logger.info("scheduler: restarting %s job of app %s in %g s (restart %d in a row)",
                        run.slot[2], run.app_id, delay, restarts)  # fmt: skip
        await self._drop(run)

    async def _drop(self, run: Run) -> None:
        if run.on_host:
            await self.host.forget(run.job_id)
        self.runs.pop(run.job_id, None)
        self._again = True

    # -- reporting ---------------------------------------------------------------------

    async def _record_new(self, run: Run) -> bool:
        assert run.slot is not None  # a one-off run is made from its job in the log
        meta = job_meta(self.model.state, run.slot)
        command = PutJob(
            run.app_id, run.job_id, _now(), JobState.PENDING, run.release_id, run.slot[2], meta
        )
        if await self._dispatch(command):
            return True
        if run.app_id not in self.model.state.apps:  # deleted meanwhile: nothing to run
            self.runs.pop(run.job_id, None)
        return False

    async def _report(
        self, run: Run, state: JobState, exit_status: int | None = None, error: str = ""
    ) -> bool:
        command = PutJob(run.app_id, run.job_id, _now(), state, exit_status=exit_status,
                         host_error=error)  # fmt: skip
        if not await self._dispatch(command):
            return False
        _log_life(run, state, exit_status, error)
        return True

    async def _dispatch(self, command: PutJob) -> bool:
        """Record a report; False when the log refuses it (the job moved on meanwhile). The
        log being unavailable is raised: the pass stops, and the next one reports again."""
        try:
            await self.dispatcher.handle(command, actor=self._actor(command))
        except (ValidationError, NotFoundError) as exc:
            logger.debug("scheduler: %r refused: %s", command, exc.message)
            return False
        return True

    def _actor(self, command: PutJob) -> Actor:
        """The scheduler, caused by the job's first report (a one-off job's, or its own
        `pending`), else by the latest scale of the job's formation."""
        index = self.model.state.causes
        if ("job", command.job_id) in index:
            return causes.actor(index, COMPONENT, "job", command.job_id)
        run = self.runs.get(command.job_id)
        if run is not None and run.slot is not None:
            formation = f"{run.slot[0]}:{run.slot[1]}"  # a `scale` event's object id
            return causes.actor(index, COMPONENT, "formation", formation)
        return Actor(component=COMPONENT)


#: How a job's life reads in the service log, by the state reported.
_LIFE = {
    JobState.STARTING: "starting",
    JobState.UP: "up",
    JobState.STOPPING: "stopping",
    JobState.DOWN: "stopped",
    JobState.CRASHED: "crashed",
    JobState.FAILED: "failed",
}


def _log_life(run: Run, state: JobState, exit_status: int | None, error: str) -> None:
    """A job's step at INFO: started, up, stopping, stopped, crashed or failed (with its
    exit status and host error)."""
    what = _LIFE.get(state)
    if what is None:
        return
    kind = run.slot[2] if run.slot is not None else "one-off"
    ended = ""
    if state in ENDED_JOB_STATES:
        ended = f" (exit status {exit_status}" + (f", host error: {error})" if error else ")")
    logger.info("scheduler: job %s (%s of app %s) %s%s", run.job_id, kind, run.app_id, what, ended)


def _now() -> datetime:
    return datetime.now(UTC)


def _not_started(run: Run, error: str) -> HostEvent:
    return HostEvent(run.job_id, "exited", error=error, started=False)
