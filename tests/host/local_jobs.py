"""Local jobs for the host tests: a host on a test directory, job ids, specs; the events of
any host's jobs."""

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from applog.store import LogQuery, MemoryLogStore
from domain.objects import Artifact
from host.interface import Host, HostEvent, JobSpec
from host.local import LocalHost

APP = "00000000-0000-4000-8000-000000000001"
AS_ROOT = os.geteuid() == 0


def new_host(root: Path, logs: MemoryLogStore, **options: float) -> LocalHost:
    settings = {"stop_grace": 1.0, "up_timeout": 5.0, "poll_interval": 0.02} | options
    return LocalHost("h1", root / "host", logs, artifact_root=root, **settings)  # type: ignore[arg-type]


def jid(name: str) -> str:
    """A job id of host h1, the same for the same name."""
    return f"h1-{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def artifact(path: Path | str, type_: str = "file") -> Artifact:
    uri = path.as_uri() if isinstance(path, Path) else path
    return Artifact("a1", type_, uri, datetime.now(UTC))


def spec(job_id: str, source: Artifact, *argv: str, ports: int = 0, **limits: int) -> JobSpec:
    env = {"FLYNN_JOB_ID": job_id, "GREETING": "hi"}
    return JobSpec(job_id, APP, "r1", "web" if ports else "", argv, env, source, ports, limits)


_early: dict[int, list[HostEvent]] = {}  # events of other jobs, seen while waiting for one


async def next_event(host: Host, job_id: str, timeout: float = 30) -> HostEvent:
    """The host's next event about `job_id` (events of other jobs are kept for later).

    The timeout leaves room for a container host to pull and start an image."""
    early = _early.setdefault(id(host), [])
    for event in early:
        if event.job_id == job_id:
            early.remove(event)
            return event
    async with asyncio.timeout(timeout):
        async for event in host.events():
            if event.job_id == job_id:
                return event
            early.append(event)
    raise AssertionError("no event")


async def ended(host: Host, job_id: str) -> HostEvent:
    """The job's `exited` event (an `up` before it is skipped)."""
    while (event := await next_event(host, job_id)).kind != "exited":
        pass
    return event


def lines(logs: MemoryLogStore, job_id: str) -> list[tuple[str, str]]:
    found, _ = logs.recent(APP, None, LogQuery(job_id=job_id))
    return [(line.stream, line.msg) for line in found]
