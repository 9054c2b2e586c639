"""PodmanHost: runs jobs of `docker` artifacts as containers, through podman (no daemon).

A job is a container named by its job id and labelled with its host, app, release, type,
ports and uid (host/containers.py), so that a host started later on the same podman storage
adopts it: `podman ps --filter label=evenflow.home=<its state directory's>` lists every job it
left (services with data directories of their own share podman's storage), running or
ended, and how the ended ones exited is in `podman inspect`. Its output goes to a log file of
the job's own under `<state dir>/containers/<uuid>/`, which one monitor task tails into the
app log store (host/conmonlog.py); `podman events` tells the monitor when a container dies,
and a `podman ps` every `sync_interval` catches what the events stream missed.

A job is `up` once its container runs and, with ports, its first port accepts connections;
one that does not within `up_timeout` is stopped with a host error. Stopping is `podman stop`
with the grace period (SIGTERM through the container's init, then SIGKILL). An exit is
reported with the container's exit status; killed at its memory limit, with a host error
saying so (podman's OOMKilled, or the kernel's count of its cgroup's OOM kills).

An attached job (`flynn run`) runs under a `podman start --attach` of the service's, on pipes
or a terminal (host/attachment.py); a signal from its client is `podman kill --signal`. Such a
container does not outlive its client: found running after a restart, it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from applog.store import LogStore
from host.archives import ArchiveImages
from host.attachment import AttachRegistry, log_writer
from host.containers import LABEL, Container, create_args, env_file
from host.images import image_source
from host.inputs import command_error, parse_job_id
from host.interface import Attachment, AttachRequest, HostEvent, JobSpec
from host.jobdir import UnsafePathError, job_path, remove, write_atomically
from host.oom import oom_kills
from host.podman_attach import start_attached
from host.podman_cli import Podman, PodmanError
from host.podman_events import DeathWatch
from host.podman_jobs import PodmanJob, adopted
from host.ports import accepts, free_ports
from host.uids import DEFAULT_RANGE, AppUids, check_mapped

logger = logging.getLogger(__name__)

PULL_POLICIES = ("missing", "always", "never")
PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]*")
_NEVER = "0001-01-01T00:00:00Z"


class PodmanHost:
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
        sync_interval: float = 5.0,
        pull: str = "missing",
        runtime: str = "runc",
        attachments: AttachRegistry | None = None,
        uids: AppUids | None = None,  # shared with another host of the machine
    ) -> None:
        self._id = host_id
        self._dir = state_dir.resolve() / "containers"
        # The containers of this state directory (services on one machine, with their own
        # data directories, share podman's storage): a label, as the directory is long.
        self._home = hashlib.sha256(str(self._dir).encode()).hexdigest()[:16]
        self._logs = logs
        self._artifact_root = Path(os.path.abspath(artifact_root))
        self._uids: AppUids | None = uids
        if os.geteuid() == 0 and uids is None:
            check_mapped(*uid_range)
            self._uids = AppUids(state_dir.resolve() / "uids.json", *uid_range)
        self._stop_grace = stop_grace
        self._up_timeout = up_timeout
        self._poll = poll_interval
        self._sync_interval = sync_interval
        self._pull = pull
        self._podman = Podman(runtime)
        self._attachments = attachments or AttachRegistry()
        self._jobs: dict[str, PodmanJob] = {}
        self._events: asyncio.Queue[HostEvent] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._synced_at = 0.0
        self._archives = ArchiveImages(self._podman, self._artifact_root)
        self._deaths = DeathWatch(self._podman, self._home, self._died)

    @property
    def id(self) -> str:
        return self._id

    # -- the Host interface ------------------------------------------------------------

    async def recover(self) -> list[str]:
        self._dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        for found in await self._list():
            job = adopted(found, self._dir)
            if job is not None:
                self._jobs[job.job_id] = job
                await self._adopt(job, (found.get("Labels") or {}).get(f"{LABEL}.uid", ""))
        self._watch()
        return list(self._jobs)

    async def start(self, spec: JobSpec) -> None:
        if spec.job_id in self._jobs:
            return
        path = job_path(self._dir, spec.job_id)  # refuses an id of any other shape
        job = self._jobs[spec.job_id] = PodmanJob(spec.job_id, spec.app_id, spec.process_type, path)
        job.preparing = asyncio.create_task(self._prepare(job, spec))
        self._watch()

    async def stop(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.ended or job.stop_requested:
            return
        job.stop_requested = True
        if job.preparing is not None:
            job.preparing.cancel()  # a pull or a create under way is not waited for
        elif job.running:
            grace = str(math.ceil(self._stop_grace))
            job.stopping = asyncio.create_task(self._podman.run("stop", f"--time={grace}", job_id))

    async def attach(self, job_id: str, request: AttachRequest) -> Attachment:
        if parse_job_id(job_id) is None:
            raise ValueError(f"not a job id: {job_id[:100]!r}")
        return self._attachments.expect(job_id, request)

    async def forget(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or not job.ended:
            return
        del self._jobs[job_id]
        if job.created:
            result = await self._podman.run("rm", "--force", "--ignore", "--volumes", job_id)
            if result.returncode != 0:
                logger.warning("podman host: cannot remove %s: %s", job_id, result.complaint())
        try:
            await asyncio.to_thread(remove, self._dir, job.dir)
        except UnsafePathError as exc:
            logger.warning("podman host: %s", exc)

    async def events(self) -> AsyncIterator[HostEvent]:
        while True:
            yield await self._events.get()

    async def close(self) -> None:
        tasks = [t for j in self._jobs.values() for t in (j.preparing, j.stopping) if t]
        tasks += [self._monitor] if self._monitor is not None else []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._deaths.close()
        for job in self._jobs.values():
            if job.log is not None:
                job.log.close()
                job.log = None

    # -- starting ----------------------------------------------------------------------

    async def _prepare(self, job: PodmanJob, spec: JobSpec) -> None:
        job.attachment = self._attachments.claim(spec.job_id)
        error = ""
        try:
            await self._create(job, spec)
            await self._start(job)
            return
        except asyncio.CancelledError:
            if not job.stop_requested:
                raise  # the host closes: the next one finds what is left
        except Exception as exc:  # every reason not to run it is the job's host error
            error = str(exc) or repr(exc)
        finally:
            job.preparing = None
            with contextlib.suppress(OSError):
                (job.dir / "env").unlink()
        self._end(job, None, error, started=False)

    async def _create(self, job: PodmanJob, spec: JobSpec) -> None:
        if problem := command_error((*spec.argv, *spec.entrypoint, *spec.cmd), spec.env):
            raise ValueError(problem)
        if not PROCESS_TYPE.fullmatch(spec.process_type):
            raise ValueError(f"the process type {spec.process_type[:64]!r} is not a name")
        if spec.artifact is None:
            raise ValueError("the job's release has no artifact")
        source = image_source(spec.artifact)
        owner = self._uids.owner(spec.app_id) if self._uids is not None else None
        reference = source.reference
        if source.archive is not None:
            reference = await self._archives.image(source.archive, owner)
        taken = (port for other in self._jobs.values() for port in other.ports)
        job.ports = tuple(free_ports(spec.ports, taken))
        os.mkdir(job.dir, 0o700)  # never an entry that exists, a link included
        write_atomically(job.dir / "env", env_file(spec, job.ports))
        request = job.attachment.request if job.attachment is not None else AttachRequest()
        job.attached = job.attachment is not None
        container = Container(
            job.job_id, self._id, self._home, source, reference, job.ports, str(job.dir / "env"),
            str(job.dir / "ctr.log"), owner, self._pull, job.attached, request.tty,
        )  # fmt: skip
        job.created = True
        created = await self._podman.check("create", *create_args(spec, container))
        job.container_id = created.decode().strip()

    async def _start(self, job: PodmanJob) -> None:
        if job.attachment is None:
            await self._podman.check("start", job.job_id)
            job.tail(self._logs, self._id, from_end=False)
        else:  # its output goes to its client

            async def stop() -> None:
                await self.stop(job.job_id)

            log = log_writer(self._logs, job.template(self._id))
            job.client = await start_attached(self._podman, job.job_id, job.attachment, stop, log)
        job.running, job.started_at = True, time.monotonic()

    # -- recovering --------------------------------------------------------------------

    async def _list(self) -> list[dict[str, Any]]:
        listed = await self._podman.json(
            "ps", "--all", "--format=json", f"--filter=label={LABEL}.home={self._home}"
        )
        return [c for c in listed or () if isinstance(c, dict)]

    async def _adopt(self, job: PodmanJob, uid: str) -> None:
        if self._uids is not None and uid.isdigit():
            self._uids.adopt(job.app_id, int(uid))
        if job.running:
            job.started_at = time.monotonic()
            if job.attached:  # nobody can talk to it any more
                job.error = "its attached client was lost when the service restarted"
                await self.stop(job.job_id)
            else:
                job.tail(self._logs, self._id, from_end=True)  # its past was logged before
        elif not job.died:  # created, never started: the host stopped between create and start
            self._end(job, None, "the host restarted before the job started", started=False)

    # -- watching ----------------------------------------------------------------------

    def _watch(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._run_monitor(), name="evenflow-podman-host")

    async def _run_monitor(self) -> None:
        while True:
            try:
                await self.check()
            except (OSError, PodmanError, ValueError):  # the jobs are still watched
                logger.exception("podman host: cannot check the jobs")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def check(self) -> None:
        """Look at every job once: deaths, output, readiness."""
        self._deaths.ensure_running()
        now = time.monotonic()
        if now - self._synced_at >= self._sync_interval:
            self._synced_at = now
            await self._sync()
        for job in self._jobs.values():
            if job.running and job.client is not None and job.client.returncode is not None:
                job.died = True  # its end (or its failure to start) is in its state now
        for job in [j for j in self._jobs.values() if j.died and not j.ended]:
            await self._finish(job)
        waiting = []
        for job in [j for j in self._jobs.values() if j.running and not j.died]:
            if job.log is not None:
                job.log.pump()
            job.oom_kills = max(job.oom_kills, oom_kills(job.container_id))
            if job.up or job.stop_requested:
                continue
            if now - job.started_at > self._up_timeout:
                port = job.ports[0] if job.ports else 0
                job.error = f"port {port} did not accept connections within {self._up_timeout:g} s"
                await self.stop(job.job_id)
            else:
                waiting.append(job)
        ready = await asyncio.gather(*(accepts(j.ports[0]) for j in waiting if j.ports))
        answers = iter(ready)
        for job in waiting:
            if (next(answers) if job.ports else True) and not (job.up or job.died or job.ended):
                job.up = True
                self._events.put_nowait(HostEvent(job.job_id, "up"))

    async def _sync(self) -> None:
        """What `podman ps` says of the jobs thought running (events may be missed)."""
        states = {(c.get("Labels") or {}).get(f"{LABEL}.job"): c.get("State")
                  for c in await self._list()}  # fmt: skip
        for job in self._jobs.values():
            if job.running and not job.died and states.get(job.job_id) != "running":
                job.died = True

    def _died(self, name: str) -> None:
        job = self._jobs.get(name)
        if job is not None and job.running:
            job.died = True
            self._wake.set()

    async def _finish(self, job: PodmanJob) -> None:
        """The container ended: how, from its state; its last output; the report."""
        if job.client is not None and job.client.returncode is None:
            return  # its `podman start --attach` is still passing output on
        try:
            (info,) = await self._podman.json("inspect", "--type=container", job.job_id)
            state = info.get("State") or {}
        except (PodmanError, ValueError):
            state = {"Error": "the container is gone"}
        job.running = False
        if job.log is not None:
            job.log.pump(final=True)
            job.log.close()
            job.log = None
        job.oom_kills = max(job.oom_kills, oom_kills(job.container_id))
        started = str(state.get("StartedAt") or _NEVER).startswith("0001-") is False
        error = job.error or str(state.get("Error") or "")
        if (state.get("OOMKilled") or job.oom_kills) and not job.stop_requested:
            error = error or "out of memory: the job was killed at its memory limit"
        exit_status = state.get("ExitCode") if started else None
        if started and not job.up and not job.ports and not job.stop_requested:
            # It ran, just too briefly to be seen running: it was up all the same.
            self._events.put_nowait(HostEvent(job.job_id, "up"))
        self._end(job, exit_status, error or ("" if started else "the container did not start"),
                  started)  # fmt: skip

    def _end(self, job: PodmanJob, exit_status: int | None, error: str, started: bool) -> None:
        job.ended, job.running = True, False
        if job.attachment is not None:
            job.attachment.ended(exit_status, error, started)
        self._events.put_nowait(HostEvent(job.job_id, "exited", exit_status, error, started))
