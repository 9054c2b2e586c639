"""LocalHost: runs jobs as processes of this machine.

Each job runs under `host/shim.py` in a session of its own, so that one signal to its process
group reaches everything it started: stopping is SIGTERM to the group, then SIGKILL after a
grace period. Its output goes to files that one monitor task tails into the app log store;
the same task notices exits and readiness. Nothing ties a job to this process (not a pipe,
not being its parent), and its directory holds all the host needs, so a host started later on
the same state directory recovers the jobs: those still running, and how the others ended.

A job is `up` once its command was executed and, for a process type with ports, once its
first port accepts TCP connections; one that does not within `up_timeout` is stopped and
exits with a host error.

Run as root, the host runs each app's jobs as a uid of the app's own (host/uids.py), and
reads their artifacts with that uid's rights (host/artifacts.py). A job id reaches the disk
only as the uuid of a well-formed id (host/jobdir.py).

An attached job (`flynn run`) runs on pipes, or on a pseudo-terminal it gets as its
controlling terminal, whose other ends the service holds (host/attachment.py): its output
goes to the client, not to the log files, and it does not outlive the service's end of them.
A client's signal goes to the job's process group, in which the shim ignores the ones it
stays alive through (host/shim.py); SIGKILL kills the shim too, and the exit status with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import attrs

from applog.store import LogLine, LogStore
from host.artifacts import unpack
from host.attachment import (
    PASSED_SIGNALS,
    AttachRegistry,
    StdioAttachment,
    log_writer,
    stdio_fds,
)
from host.inputs import command_error, parse_job_id
from host.interface import Attachment, AttachRequest, HostEvent, JobSpec
from host.jobdir import (
    JOB_DIR_MODE,
    Exit,
    JobDir,
    Record,
    UnsafePathError,
    alive,
    job_dirs,
    job_path,
    kill_group,
    remove,
)
from host.logtail import JobLog
from host.ports import accepts, free_ports
from host.uids import DEFAULT_RANGE, AppUids, check_mapped, warn_if_unreachable

logger = logging.getLogger(__name__)

SHIM = Path(__file__).with_name("shim.py")
#: Release resources the host applies, by the shim's name for their rlimit.
LIMITS = {"max_fd": "nofile", "memory": "as"}
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW


@attrs.define(eq=False)
class _Job:
    dir: JobDir
    record: Record
    log: JobLog | None = None
    pid: int | None = None  # the shim's, which leads the job's process group
    pid_started: str = ""
    child: bool = False  # spawned by this host, which reaps it
    spawned_at: float = 0.0
    up: bool = False
    stop_requested: bool = False
    term_sent_at: float | None = None
    killed: bool = False
    error: str = ""
    ended: bool = False
    preparing: asyncio.Task[None] | None = None
    has_dir: bool = False  # its directory is its own (made or adopted): forget removes it
    attachment: StdioAttachment | None = None


class LocalHost:
    def __init__(
        self,
        host_id: str,
        state_dir: Path,
        logs: LogStore,
        *,
        artifact_root: Path,
        uid_range: tuple[int, int] = DEFAULT_RANGE,
        stop_grace: float = 10.0,
        up_timeout: float = 30.0,
        poll_interval: float = 0.1,
        max_log_bytes: int = 8 * 1024 * 1024,
        attachments: AttachRegistry | None = None,
        uids: AppUids | None = None,  # shared with another host of the machine
    ) -> None:
        self._id = host_id
        self._state_dir = state_dir.resolve()
        self._jobs_dir = self._state_dir / "jobs"
        self._logs = logs
        self._artifact_root = Path(os.path.abspath(artifact_root))
        # Not root: every job runs as the service's own user, which cannot switch to another.
        self._uids: AppUids | None = uids
        if os.geteuid() == 0 and uids is None:
            check_mapped(*uid_range)
            self._uids = AppUids(self._state_dir / "uids.json", *uid_range)
        self._stop_grace = stop_grace
        self._up_timeout = up_timeout
        self._poll = poll_interval
        self._max_log_bytes = max_log_bytes
        self._jobs: dict[str, _Job] = {}
        self._events: asyncio.Queue[HostEvent] = asyncio.Queue()
        self._monitor: asyncio.Task[None] | None = None
        self._attachments = attachments or AttachRegistry()

    @property
    def id(self) -> str:
        return self._id

    # -- the Host interface ------------------------------------------------------------

    async def recover(self) -> list[str]:
        self._make_dirs()
        for jobdir, record in await asyncio.to_thread(job_dirs, self._jobs_dir):
            if self._uids is not None:
                self._uids.adopt(record.app_id, record.uid)
            job = self._jobs[record.job_id] = _Job(jobdir, record, has_dir=True)
            pid = jobdir.pid()
            if pid is None:
                self._end(job, Exit(None, "the host restarted before the job started", False))
                continue
            job.pid, job.pid_started = pid
            job.spawned_at = time.monotonic()
            job.log = self._job_log(job, from_end=True)  # what it wrote meanwhile is on disk
        self._watch()
        return list(self._jobs)

    async def start(self, spec: JobSpec) -> None:
        if spec.job_id in self._jobs:
            return
        path = job_path(self._jobs_dir, spec.job_id)  # refuses an id of any other shape
        taken = (port for job in self._jobs.values() for port in job.record.ports)
        ports = tuple(free_ports(spec.ports, taken))
        record = Record(spec.job_id, spec.app_id, spec.release_id, spec.process_type, ports)
        job = self._jobs[spec.job_id] = _Job(JobDir(path), record)
        job.preparing = asyncio.create_task(self._prepare(job, spec))
        self._watch()

    async def stop(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.ended:
            return
        job.stop_requested = True
        if job.pid is not None:  # else it is still being prepared, and will not be spawned
            self._terminate(job)

    async def attach(self, job_id: str, request: AttachRequest) -> Attachment:
        if parse_job_id(job_id) is None:
            raise ValueError(f"not a job id: {job_id[:100]!r}")
        return self._attachments.expect(job_id, request)

    async def forget(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or not job.ended:
            return  # unknown here, or still running: stop it first
        del self._jobs[job_id]
        if not job.has_dir:  # e.g. another job's uuid: its directory is not this job's
            return
        try:
            await asyncio.to_thread(remove, self._jobs_dir, job.dir.path)
        except UnsafePathError as exc:
            logger.warning("local host: %s", exc)

    async def events(self) -> AsyncIterator[HostEvent]:
        while True:
            yield await self._events.get()

    async def close(self) -> None:
        tasks = [j.preparing for j in self._jobs.values() if j.preparing is not None]
        if self._monitor is not None:
            tasks.append(self._monitor)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in self._jobs.values():
            if job.log is not None:
                job.log.close()
                job.log = None

    # -- starting ----------------------------------------------------------------------

    def _make_dirs(self) -> None:
        self._jobs_dir.mkdir(parents=True, exist_ok=True)
        self._artifact_root.mkdir(parents=True, exist_ok=True)
        if self._uids is not None:
            # The jobs' users must traverse them to reach their working trees (and no more).
            for path in (self._state_dir, self._jobs_dir):
                os.chmod(path, JOB_DIR_MODE)
            warn_if_unreachable(self._jobs_dir)
            warn_if_unreachable(self._artifact_root)

    async def _prepare(self, job: _Job, spec: JobSpec) -> None:
        job.attachment = self._attachments.claim(spec.job_id)
        try:
            if problem := command_error(spec.argv, spec.env):
                raise ValueError(problem)
            owner = self._uids.owner(spec.app_id) if self._uids is not None else None
            job.record = attrs.evolve(job.record, uid=owner[0] if owner is not None else None)
            job.dir.create(job.record)
            job.has_dir = True
            if spec.artifact is None:
                raise ValueError("the job's release has no artifact")
            job.dir.make_work(owner)
            await unpack(spec.artifact, self._artifact_root, job.dir.work, owner)
            if not spec.argv:
                raise ValueError("nothing to run: no entrypoint, cmd or args")
            job.dir.write_run(self._run_doc(job, spec, owner))
            if not job.stop_requested:
                self._spawn(job)
                return
            error = ""
        except Exception as exc:  # every reason not to run it is the job's host error
            error = str(exc) or repr(exc)
        finally:
            job.preparing = None
        self._end(job, Exit(None, error, started=False))

    def _run_doc(
        self, job: _Job, spec: JobSpec, owner: tuple[int, int] | None
    ) -> dict[str, object]:
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(job.dir.work)}
        env |= spec.env
        for i, port in enumerate(job.record.ports):
            env[f"PORT_{i}"] = str(port)
        if job.record.ports:
            env["PORT"] = str(job.record.ports[0])
        limits = {LIMITS[k]: v for k, v in spec.limits.items() if k in LIMITS and v > 0}
        uid, gid = owner or (None, None)
        tty = job.attachment is not None and job.attachment.request.tty
        return {
            "argv": list(spec.argv), "env": env, "cwd": str(job.dir.work),
            "uid": uid, "gid": gid, "limits": limits, "tty": tty,
        }  # fmt: skip

    def _spawn(self, job: _Job) -> None:
        if job.attachment is not None:
            fds, kept = stdio_fds(job.attachment.request)
        else:
            kept = []
            fds = [
                os.open(os.devnull, os.O_RDONLY),
                os.open(job.dir.stdout, _LOG_FLAGS, 0o600),
                os.open(job.dir.stderr, _LOG_FLAGS, 0o600),
            ]
        try:
            argv = [sys.executable, "-I", "-S", str(SHIM), str(job.dir.path)]
            actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
            pid = os.posix_spawn(sys.executable, argv, {}, file_actions=actions, setsid=True)
        except BaseException:
            for fd in kept:
                os.close(fd)
            raise
        finally:
            for fd in set(fds):
                os.close(fd)
        job.dir.write_pid(pid)  # at once: a host restarted later must find it
        job.pid, job.pid_started = job.dir.pid() or (pid, "")
        job.child = True
        job.spawned_at = time.monotonic()
        if job.attachment is None:
            job.log = self._job_log(job, from_end=False)
        else:
            self._bind(job, job.attachment, kept)

    def _bind(self, job: _Job, attachment: StdioAttachment, kept: list[int]) -> None:
        """Hand the job's streams to its client."""

        async def signal_job(signum: int) -> None:
            if signum in PASSED_SIGNALS and job.pid is not None and not job.ended:
                kill_group(job.pid, signal.Signals(signum))

        async def stop() -> None:
            await self.stop(job.record.job_id)

        log = log_writer(self._logs, self._template(job))
        attachment.bind(kept, signal=signal_job, stop=stop, log=log)

    def _job_log(self, job: _Job, *, from_end: bool) -> JobLog:
        files = {"stdout": job.dir.stdout, "stderr": job.dir.stderr}
        return JobLog(self._logs, self._template(job), files, from_end=from_end,
                      max_bytes=self._max_log_bytes)  # fmt: skip

    def _template(self, job: _Job) -> LogLine:
        """App, job, process type and host of each of the job's log lines."""
        r = job.record
        return LogLine(r.app_id, "", _epoch(), job_id=r.job_id, process_type=r.process_type,
                       host_id=self._id)  # fmt: skip

    # -- watching ----------------------------------------------------------------------

    def _watch(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._run_monitor(), name="evenflow-local-host")

    async def _run_monitor(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._poll)

    async def check(self) -> None:
        """Look at every job once: output, exit, stop escalation, readiness."""
        waiting = []
        for job in [j for j in self._jobs.values() if j.pid is not None and not j.ended]:
            try:
                if self._check(job, time.monotonic()):
                    waiting.append(job)
            except OSError:  # its files, say: the other jobs are still watched
                logger.exception("local host: cannot check job %s", job.record.job_id)
        ready = await asyncio.gather(*(self._ready(job) for job in waiting))
        for job, is_ready in zip(waiting, ready, strict=True):
            if is_ready and not (job.up or job.ended or job.term_sent_at is not None):
                job.up = True
                self._events.put_nowait(HostEvent(job.record.job_id, "up"))

    def _check(self, job: _Job, now: float) -> bool:
        """Copy its output, notice its end, escalate its stop; True: it may be up now."""
        assert job.pid is not None
        if job.log is not None:
            job.log.pump()
        if self._gone(job):
            self._finish(job)
        elif job.term_sent_at is not None:
            if not job.killed and now - job.term_sent_at >= self._stop_grace:
                kill_group(job.pid, signal.SIGKILL)
                job.killed = True
        elif not job.up and now - job.spawned_at > self._up_timeout:
            port = job.record.ports[0] if job.record.ports else 0
            job.error = f"port {port} did not accept connections within {self._up_timeout:g} s"
            self._terminate(job)
        else:
            return not job.up and job.dir.started
        return False

    async def _ready(self, job: _Job) -> bool:
        return not job.record.ports or await accepts(job.record.ports[0])

    def _gone(self, job: _Job) -> bool:
        assert job.pid is not None
        if job.child:
            try:
                pid, _ = os.waitpid(job.pid, os.WNOHANG)
            except ChildProcessError:
                job.child = False
            else:
                return pid != 0
        return not alive(job.pid, job.pid_started)

    def _terminate(self, job: _Job) -> None:
        if job.term_sent_at is None and job.pid is not None:
            job.term_sent_at = time.monotonic()
            if job.child or alive(job.pid, job.pid_started):  # never a reused pid's group
                kill_group(job.pid, signal.SIGTERM)

    def _finish(self, job: _Job) -> None:
        assert job.pid is not None
        kill_group(job.pid, signal.SIGKILL)  # what the job left behind in its group
        if job.log is not None:
            job.log.pump(final=True)
            job.log.close()
            job.log = None
        outcome = job.dir.exit()
        if not job.error and outcome.exit_status is None and not job.stop_requested:
            job.error = "the job's supervisor was killed"
        if outcome.started and not job.up and not job.record.ports and not job.stop_requested:
            # It ran, just too briefly to be seen running: it was up all the same.
            self._events.put_nowait(HostEvent(job.record.job_id, "up"))
        self._end(job, attrs.evolve(outcome, error=job.error or outcome.error))

    def _end(self, job: _Job, outcome: Exit) -> None:
        job.ended = True
        if job.attachment is not None:
            job.attachment.ended(outcome.exit_status, outcome.error, outcome.started)
        event = HostEvent(
            job.record.job_id, "exited", outcome.exit_status, outcome.error, outcome.started
        )
        self._events.put_nowait(event)


def _epoch() -> datetime:
    return datetime.fromtimestamp(0, UTC)
