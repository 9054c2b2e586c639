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

from eventstore.objects import Artifact


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
