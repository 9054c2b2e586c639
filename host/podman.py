"""PodmanHost: runs jobs of `docker` artifacts as containers, through podman (no daemon).

A job is a container named by its job id and labelled with its host, app, release, type,
ports and uid (host/containers.py), so that a host started later on the same podman storage
adopts it: `podman ps --filter label=evenflow.host=<id>` lists every job it left, running or
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
import logging
import math
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson

from applog.store import LogLine, LogStore
from host.archives import open_archive
from host.attachment import AttachRegistry, StdioAttachment, stdio_fds
from host.conmonlog import ContainerLog
from host.containers import LABEL, Container, create_args, env_file
from host.images import image_source
from host.inputs import command_error, parse_job_id
from host.interface import Attachment, AttachRequest, HostEvent, JobSpec
from host.jobdir import UnsafePathError, job_path, remove, write_atomically
from host.oom import oom_kills
from host.podman_cli import Podman, PodmanError
from host.ports import accepts, free_ports
from host.uids import DEFAULT_RANGE, AppUids, check_mapped

logger = logging.getLogger(__name__)

PULL_POLICIES = ("missing", "always", "never")
PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]*")
_NEVER = "0001-01-01T00:00:00Z"


@attrs.define(eq=False)
class _Job:
    job_id: str
    app_id: str
    process_type: str
    dir: Path
    ports: tuple[int, ...] = ()
    attached: bool = False
    created: bool = False  # a container of this name may exist: forget removes it
    container_id: str = ""
    running: bool = False
    started_at: float = 0.0
    up: bool = False
    stop_requested: bool = False
    stopping: asyncio.Task[Any] | None = None
    died: bool = False  # podman says it ended: how is due
    ended: bool = False
    error: str = ""
    preparing: asyncio.Task[None] | None = None
    log: ContainerLog | None = None
    attachment: StdioAttachment | None = None
    client: asyncio.subprocess.Process | None = None  # an attached job's `podman start`
    oom_kills: int = 0


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
        self._jobs: dict[str, _Job] = {}
        self._events: asyncio.Queue[HostEvent] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._watcher: asyncio.subprocess.Process | None = None
        self._listener: asyncio.Task[None] | None = None
        self._synced_at = 0.0
        self._archives: dict[tuple[int, int, int, int], str] = {}  # file identity -> image id

    @property
    def id(self) -> str:
        return self._id

    # -- the Host interface ------------------------------------------------------------

    async def recover(self) -> list[str]:
        self._dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        for found in await self._list():
            job = self._adopt(found)
            if job is None:
                continue
            self._jobs[job.job_id] = job
            if job.running and job.attached:  # nobody can talk to it any more
                job.error = "its attached client was lost when the service restarted"
                await self.stop(job.job_id)
        self._watch()
        return list(self._jobs)

    async def start(self, spec: JobSpec) -> None:
        if spec.job_id in self._jobs:
            return
        path = job_path(self._dir, spec.job_id)  # refuses an id of any other shape
        job = self._jobs[spec.job_id] = _Job(spec.job_id, spec.app_id, spec.process_type, path)
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
        tasks += [t for t in (self._monitor, self._listener) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._watcher is not None and self._watcher.returncode is None:
            self._watcher.kill()
            await self._watcher.wait()
        for job in self._jobs.values():
            if job.log is not None:
                job.log.close()
                job.log = None

    # -- starting ----------------------------------------------------------------------

    async def _prepare(self, job: _Job, spec: JobSpec) -> None:
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

    async def _create(self, job: _Job, spec: JobSpec) -> None:
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
            reference = await self._load(source.archive, owner)
        taken = (port for other in self._jobs.values() for port in other.ports)
        job.ports = tuple(free_ports(spec.ports, taken))
        os.mkdir(job.dir, 0o700)  # never an entry that exists, a link included
        write_atomically(job.dir / "env", env_file(spec, job.ports))
        request = job.attachment.request if job.attachment is not None else AttachRequest()
        job.attached = job.attachment is not None
        container = Container(
            job.job_id, self._id, source, reference, job.ports, str(job.dir / "env"),
            str(job.dir / "ctr.log"), owner, self._pull, job.attached, request.tty,
        )  # fmt: skip
        job.created = True
        created = await self._podman.check("create", *create_args(spec, container))
        job.container_id = created.decode().strip()

    async def _load(self, path: str, owner: tuple[int, int] | None) -> str:
        """The id of the image in the OCI archive at `path`, loaded once per file version."""
        fd = await asyncio.to_thread(open_archive, path, self._artifact_root, owner)
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            known = self._archives.get(key)
            if (
                known is not None
                and (await self._podman.run("image", "exists", known)).returncode == 0
            ):
                return known
            out = await self._podman.check("pull", "--quiet", f"oci-archive:/dev/fd/{fd}",
                                           pass_fds=(fd,))  # fmt: skip
        finally:
            os.close(fd)
        image = out.decode().strip().splitlines()[-1] if out.strip() else ""
        self._archives[key] = image
        return image

    async def _start(self, job: _Job) -> None:
        if job.attachment is None:
            await self._podman.check("start", job.job_id)
        else:
            await self._start_attached(job, job.attachment)
        job.running, job.started_at = True, time.monotonic()
        if job.attachment is None:  # an attached job's output goes to its client
            template = LogLine(job.app_id, "", datetime.fromtimestamp(0, UTC), job_id=job.job_id,
                               process_type=job.process_type, host_id=self._id)  # fmt: skip
            job.log = ContainerLog(job.dir / "ctr.log", self._logs, template, from_end=False)

    async def _start_attached(self, job: _Job, attachment: StdioAttachment) -> None:
        fds, kept = stdio_fds(attachment.request)
        try:
            job.client = await self._podman.spawn(
                "start", "--attach", "--interactive", "--sig-proxy=false", job.job_id,
                stdin=fds[0], stdout=fds[1], stderr=fds[2],
            )  # fmt: skip
        except BaseException:
            for fd in kept:
                os.close(fd)
            raise
        finally:
            for fd in set(fds):
                os.close(fd)
        client = job.client

        async def signal_job(signum: int) -> None:
            if 0 < signum < signal.NSIG and not job.ended:
                await self._podman.run("kill", f"--signal={signum}", job.job_id)

        async def stop() -> None:
            await self.stop(job.job_id)

        def resized() -> None:  # podman reads its terminal's new size on SIGWINCH
            with contextlib.suppress(ProcessLookupError):
                client.send_signal(signal.SIGWINCH)

        stdin, stdout, *stderr = kept
        attachment.bind(stdin=stdin, stdout=stdout, stderr=stderr[0] if stderr else None,
                        signal=signal_job, stop=stop, after_resize=resized,
                        log=self._log_writer(job))  # fmt: skip

    def _log_writer(self, job: _Job) -> Any:
        template = LogLine(job.app_id, "", datetime.fromtimestamp(0, UTC), job_id=job.job_id,
                           process_type=job.process_type, host_id=self._id)  # fmt: skip

        def write(stream: str, msg: str) -> None:
            self._logs.write(attrs.evolve(template, msg=msg, timestamp=datetime.now(UTC),
                                          stream=stream))  # fmt: skip

        return write

    # -- recovering --------------------------------------------------------------------

    async def _list(self) -> list[dict[str, Any]]:
        listed = await self._podman.json(
            "ps", "--all", "--format=json", f"--filter=label={LABEL}.host={self._id}"
        )
        return [c for c in listed or () if isinstance(c, dict)]

    def _adopt(self, found: dict[str, Any]) -> _Job | None:
        labels = found.get("Labels") or {}
        job_id = labels.get(f"{LABEL}.job", "")
        if parse_job_id(job_id) is None or job_id not in (found.get("Names") or ()):
            logger.warning("podman host: container %s is not a job of ours; left alone",
                           found.get("Id"))  # fmt: skip
            return None
        ports = tuple(int(p) for p in labels.get(f"{LABEL}.ports", "").split(",") if p.isdigit())
        app_id = labels.get(f"{LABEL}.app", "")
        try:
            path = job_path(self._dir, job_id)
        except UnsafePathError as exc:
            logger.warning("podman host: %s; container %s left alone", exc, job_id)
            return None
        job = _Job(job_id, app_id, labels.get(f"{LABEL}.type", ""), path, ports,
                   attached=bool(labels.get(f"{LABEL}.attached")), created=True,
                   container_id=str(found.get("Id", "")))  # fmt: skip
        uid = labels.get(f"{LABEL}.uid", "")
        if self._uids is not None and uid.isdigit():
            self._uids.adopt(app_id, int(uid))
        state = found.get("State")
        if state == "running":
            job.running, job.started_at = True, time.monotonic()
            if not job.attached:
                template = LogLine(app_id, "", datetime.fromtimestamp(0, UTC), job_id=job_id,
                                   process_type=job.process_type, host_id=self._id)  # fmt: skip
                job.log = ContainerLog(job.dir / "ctr.log", self._logs, template, from_end=True)
        elif state in ("exited", "stopped"):
            job.died = True
        else:  # created, never started: the host stopped between create and start
            job.ended = True
            error = "the host restarted before the job started"
            self._events.put_nowait(HostEvent(job_id, "exited", None, error, started=False))
        return job

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
        self._listen()
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

    def _listen(self) -> None:
        """Keep `podman events` running: it says at once when a container dies."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._read_events())

    async def _read_events(self) -> None:
        self._watcher = watcher = await self._podman.stream(
            "events", "--format=json", "--filter=type=container", "--filter=event=died",
            f"--filter=label={LABEL}.host={self._id}",
        )  # fmt: skip
        assert watcher.stdout is not None
        try:
            while line := await watcher.stdout.readline():
                with contextlib.suppress(ValueError):
                    name = orjson.loads(line).get("Name")
                    job = self._jobs.get(name) if isinstance(name, str) else None
                    if job is not None and job.running:
                        job.died = True
                        self._wake.set()
        finally:
            if watcher.returncode is None:
                watcher.kill()
                await watcher.wait()

    async def _finish(self, job: _Job) -> None:
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

    def _end(self, job: _Job, exit_status: int | None, error: str, started: bool) -> None:
        job.ended, job.running = True, False
        if job.attachment is not None:
            job.attachment.ended(exit_status, error, started)
        self._events.put_nowait(HostEvent(job.job_id, "exited", exit_status, error, started))
