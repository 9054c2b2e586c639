"""The host interface: what a scheduler asks of a host, and what a host tells it back.

Every request is asynchronous in effect: `start` and `stop` return once the host has taken
them, and what became of the job arrives later as a `HostEvent` (up, or exited). A backend
that runs jobs elsewhere (containers, another machine) implements these few methods; the
scheduler knows nothing else about hosts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal, Protocol

import attrs

from domain.objects import Artifact


@attrs.frozen
class JobSpec:
    """Everything a host needs to run one job."""

    job_id: str
    app_id: str
    release_id: str
    process_type: str  # "" for a one-off job
    argv: tuple[str, ...]
    env: dict[str, str]  # without PORT: the host allocates ports and sets it
    artifact: Artifact | None
    ports: int = 0  # how many ports to allocate ($PORT, $PORT_0, $PORT_1, ...)
    limits: dict[str, int] = attrs.field(factory=dict)  # resource name -> limit (max_fd, memory)
    # For a container image, which keeps its own entrypoint and cmd unless these are given
    # (a host running processes runs `argv`, which is entrypoint + cmd).
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


@attrs.frozen
class AttachRequest:
    """How a client attaches to a job (Flynn's `flynn run`): its stdin, stdout and stderr
    through the service, on a terminal of its own when `tty` (with that many lines and
    columns); with `log`, the output goes to the app log too."""

    tty: bool = False
    height: int = 0
    width: int = 0
    log: bool = False


class AttachError(Exception):
    """The attached job did not run, or its end is unknown; the message says why."""


class Attachment(Protocol):
    """A client's end of an attached job's streams (host/attachment.py makes them)."""

    async def started(self) -> None:
        """Wait until the job runs with its streams attached; AttachError if it never will."""
        ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(1 for stdout, 2 for stderr; data) as the job writes it, until both are closed."""
        ...

    async def write(self, data: bytes) -> None:
        """Send to the job's stdin."""
        ...

    async def close_stdin(self) -> None: ...

    async def signal(self, signum: int) -> None:
        """Send the job a signal (the host may refuse some: see its module)."""
        ...

    async def resize(self, height: int, width: int) -> None:
        """Resize the job's terminal (nothing without one)."""
        ...

    async def exit_status(self) -> int:
        """Wait for the job's end: its exit status, or AttachError."""
        ...

    async def detach(self, *, stop: bool = True) -> None:
        """The client is done with the streams; with `stop`, a job still running is stopped
        (nobody can talk to it any more)."""
        ...


@attrs.frozen
class HostEvent:
    """A job came up (running, and its port accepts connections), or it exited.

    `started` tells a process that ran and ended (down or crashed) from a job the host could
    not run at all (failed); `error` says why the host gave up on it, if it did.
    """

    job_id: str
    kind: Literal["up", "exited"]
    exit_status: int | None = None
    error: str = ""
    started: bool = True


class Host(Protocol):
    @property
    def id(self) -> str:
        """The host's id: the prefix of the ids of the jobs it runs (no "-" in it)."""
        ...

    async def recover(self) -> list[str]:
        """The jobs this host still knows of after a restart: running ones (an `up` event
        follows once they are ready again) and ones that ended meanwhile (an `exited` event
        follows). Called once, before any other request."""
        ...

    async def start(self, spec: JobSpec) -> None:
        """Start a job; an `up` and then an `exited` event follow (or `exited` alone)."""
        ...

    async def stop(self, job_id: str) -> None:
        """Stop a job (gracefully, then forcibly); its `exited` event follows. Idempotent."""
        ...

    async def attach(self, job_id: str, request: AttachRequest) -> Attachment:
        """Ask for the streams of a job that is not started yet: when `start` comes for it,
        it runs with them attached. Flynn's attach before AddJob (controller/jobs.go)."""
        ...

    async def forget(self, job_id: str) -> None:
        """Drop what the host keeps about an ended job (its files), once it is reported."""
        ...

    def events(self) -> AsyncIterator[HostEvent]:
        """What happens to the jobs, in order; one consumer."""
        ...

    async def close(self) -> None:
        """Stop watching the jobs and leave them running: a host on the same state recovers
        them."""
        ...
