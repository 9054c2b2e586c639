"""What the podman host keeps of a job, and how a job is read back from `podman ps`."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from applog.store import LogLine, LogStore
from host.attachment import StdioAttachment
from host.conmonlog import ContainerLog
from host.containers import LABEL
from host.inputs import parse_job_id
from host.jobdir import UnsafePathError, job_path

logger = logging.getLogger(__name__)


@attrs.define(eq=False)
class PodmanJob:
    job_id: str
    app_id: str
    process_type: str
    dir: Path  # <state dir>/containers/<uuid>: its env file (briefly) and its log file
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

    def tail(self, logs: LogStore, host_id: str, *, from_end: bool) -> None:
        """Follow its output into the app log (from what it writes next, with `from_end`)."""
        self.log = ContainerLog(self.dir / "ctr.log", logs, self.template(host_id),
                                from_end=from_end)  # fmt: skip

    def template(self, host_id: str) -> LogLine:
        """App, job, process type and host of each of its log lines."""
        return LogLine(self.app_id, "", datetime.fromtimestamp(0, UTC), job_id=self.job_id,
                       process_type=self.process_type, host_id=host_id)  # fmt: skip


def adopted(found: dict[str, Any], root: Path) -> PodmanJob | None:
    """The job a container listed by `podman ps` is (None, with a warning, if it is none of
    ours); its state as podman said it, its uid label left to the caller."""
    labels = found.get("Labels") or {}
    job_id = labels.get(f"{LABEL}.job", "")
    if parse_job_id(job_id) is None or job_id not in (found.get("Names") or ()):
        logger.warning("podman host: container %s is not a job of ours; left alone",
                       found.get("Id"))  # fmt: skip
        return None
    try:
        path = job_path(root, job_id)
    except UnsafePathError as exc:
        logger.warning("podman host: %s; container %s left alone", exc, job_id)
        return None
    ports = tuple(int(p) for p in labels.get(f"{LABEL}.ports", "").split(",") if p.isdigit())
    job = PodmanJob(job_id, labels.get(f"{LABEL}.app", ""), labels.get(f"{LABEL}.type", ""),
                    path, ports, attached=bool(labels.get(f"{LABEL}.attached")), created=True,
                    container_id=str(found.get("Id", "")))  # fmt: skip
    state = found.get("State")
    job.running = state == "running"
    job.died = state in ("exited", "stopped")
    return job
