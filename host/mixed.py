"""The machine's host: image jobs in containers, every other job as a process.

`JOB_HOST=podman` (or `auto` where podman is installed) runs jobs of `docker` artifacts on the
podman host and the others (`file` artifacts) on the local process host, behind one host id
and one stream of events, with one set of app uids (an app's processes and containers run as
the same uid) and one registry of attached clients. `JOB_HOST=local` runs the local host
alone, which fails image jobs with a host error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from applog.store import LogStore
from host.attachment import AttachRegistry
from host.interface import Attachment, AttachRequest, Host, HostEvent, JobSpec
from host.local import LocalHost
from host.podman import PodmanHost
from host.podman_cli import available
from host.uids import AppUids, check_mapped

JOB_HOSTS = ("local", "podman", "auto")


class MixedHost:
    def __init__(self, processes: Host, containers: Host) -> None:
        self._processes, self._containers = processes, containers
        self._where: dict[str, Host] = {}
        self._events: asyncio.Queue[HostEvent] = asyncio.Queue()
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def id(self) -> str:
        return self._processes.id

    async def recover(self) -> list[str]:
        found = []
        for host in (self._processes, self._containers):
            for job_id in await host.recover():
                self._where[job_id] = host
                found.append(job_id)
            self._pumps.append(asyncio.create_task(self._pump(host)))
        return found

    async def start(self, spec: JobSpec) -> None:
        image = spec.artifact is not None and spec.artifact.type == "docker"
        host = self._where[spec.job_id] = self._containers if image else self._processes
        await host.start(spec)

    async def stop(self, job_id: str) -> None:
        host = self._where.get(job_id)
        if host is not None:
            await host.stop(job_id)

    async def attach(self, job_id: str, request: AttachRequest) -> Attachment:
        return await self._processes.attach(job_id, request)  # the registry both consult

    async def forget(self, job_id: str) -> None:
        host = self._where.get(job_id)
        if host is not None:
            await host.forget(job_id)
            self._where.pop(job_id, None)

    async def events(self) -> AsyncIterator[HostEvent]:
        while True:
            yield await self._events.get()

    async def close(self) -> None:
        for task in self._pumps:
            task.cancel()
        for task in self._pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._processes.close()
        await self._containers.close()

    async def _pump(self, host: Host) -> None:
        async for event in host.events():
            self._events.put_nowait(event)


def open_host(
    kind: str,
    host_id: str,
    state_dir: Path,
    logs: LogStore,
    *,
    artifact_root: Path,
    uid_range: tuple[int, int],
    stop_grace: float,
    up_timeout: float,
    poll_interval: float,
    pull: str = "missing",
    runtime: str = "runc",
) -> Host:
    """The host `kind` (JOB_HOST) names: the local one, or it and a podman one."""
    attachments = AttachRegistry()
    uids = None
    if os.geteuid() == 0:
        check_mapped(*uid_range)
        uids = AppUids(state_dir.resolve() / "uids.json", *uid_range)
    processes = LocalHost(
        host_id, state_dir, logs, artifact_root=artifact_root, uid_range=uid_range,
        stop_grace=stop_grace, up_timeout=up_timeout, poll_interval=poll_interval,
        attachments=attachments, uids=uids,
    )  # fmt: skip
    if kind == "local" or (kind == "auto" and not available()):
        return processes
    containers = PodmanHost(
        host_id, state_dir, logs, artifact_root=artifact_root, uid_range=uid_range,
        stop_grace=stop_grace, up_timeout=up_timeout, poll_interval=max(poll_interval, 0.1),
        pull=pull, runtime=runtime, attachments=attachments, uids=uids,
    )  # fmt: skip
    return MixedHost(processes, containers)
