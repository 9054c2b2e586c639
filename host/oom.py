"""How many times the kernel's OOM killer struck inside a container's memory cgroup.

Podman's own `OOMKilled` relies on conmon's notification, which cgroup v1 kernels of late no
longer deliver; the cgroup's own counter (`oom_kill` in `memory.oom_control` on v1,
`memory.events` on v2) still counts. The host reads it while the container runs and once more
when it has died, before podman removes the cgroup (a kill in the very last moments may be
missed: the exit status, 137, is reported all the same).
"""

from __future__ import annotations

import re
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
_ID = re.compile(r"[0-9a-f]{64}")
# Where podman puts a container's cgroup: its cgroupfs parent, or systemd's slice.
_PLACES = ("libpod_parent/libpod-{id}", "machine.slice/libpod-{id}.scope")


def oom_kills(container_id: str, root: Path = CGROUPS) -> int:
    """The OOM kills counted in the container's memory cgroup (0 if it is gone or unknown)."""
    if not _ID.fullmatch(container_id):
        return 0
    for base, counters in ((root / "memory", "memory.oom_control"), (root, "memory.events")):
        for place in _PLACES:
            try:
                text = (base / place.format(id=container_id) / counters).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill" and value.strip().isdigit():
                    return int(value)
    return 0
