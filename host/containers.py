"""A job's container: the `podman create` command line and env file made from its spec.

Each job is a container of its own, named by its (checked) job id and labelled with what a
restarted host needs to adopt it. It runs as its app's uid (host/uids.py) with no capability
and no way to gain privileges (setuid files stay inert), under a small init (`--init`:
signals reach the job, and its orphans are reaped), in its own network namespace on podman's
bridge with its ports published on the host. The release's limits apply: `memory` (no swap
beyond it), `cpu` (Flynn's milliCPU as CPU shares), `max_fd` as RLIMIT_NOFILE; limits are
capped at the service's own hard limits, which a container may not raise.

The environment goes through a file only root reads, not the command line (which any user
may read in /proc): podman's env files hold one `NAME=value` a line, so a value with a line
break, or a name with blanks or starting with `#`, cannot be passed and fails the job.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path

import attrs
import orjson

from host.images import ImageSource
from host.interface import JobSpec

LABEL = "evenflow"
#: podman's smallest memory limit.
MIN_MEMORY = 6 * 1024 * 1024
#: Flynn: host/libcontainer_backend.go milliCPUToShares.
MIN_SHARES, SHARES_PER_CPU = 2, 1024
#: What a container's log file may grow to before conmon starts it over.
LOG_MAX_SIZE = 8 * 1024 * 1024
PID_MAX = Path("/proc/sys/kernel/pid_max")
_ENV_NAME = re.compile(r"[^\s#=][^\s=]*")


class ContainerSpecError(Exception):
    """The job cannot be a container as asked; the message is its host error."""


@attrs.frozen
class Container:
    """What, besides the spec, a job's container is made of."""

    name: str  # the job id
    host_id: str
    home: str  # which service's state directory it belongs to
    image: ImageSource
    reference: str  # the image to create it from (an archive's is its loaded id)
    ports: tuple[int, ...]
    env_file: str
    log_path: str
    owner: tuple[int, int] | None  # uid, gid; None: the image's user
    pull: str  # missing, always, never
    attached: bool = False
    tty: bool = False


def labels(spec: JobSpec, container: Container) -> dict[str, str]:
    found = {
        "host": container.host_id, "home": container.home, "job": spec.job_id, "app": spec.app_id,
        "release": spec.release_id, "type": spec.process_type,
        "ports": ",".join(str(p) for p in container.ports),
        "uid": "" if container.owner is None else str(container.owner[0]),
        "attached": "1" if container.attached else "",
    }  # fmt: skip
    return {f"{LABEL}.{key}": value for key, value in found.items()}


def env_file(spec: JobSpec, ports: tuple[int, ...]) -> bytes:
    """The job's environment in podman's env-file format (ContainerSpecError if it cannot)."""
    env = dict(spec.env)
    for i, port in enumerate(ports):
        env[f"PORT_{i}"] = str(port)
    if ports:
        env["PORT"] = str(ports[0])
    lines = []
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name) or "\n" in value or "\r" in value or "\0" in value:
            raise ContainerSpecError(
                f"the environment variable {name[:64]!r} cannot be given to a container: its "
                "name holds a blank or starts with '#', or its value a line break"
            )
        lines.append(f"{name}={value}\n")
    return "".join(lines).encode()


def create_args(spec: JobSpec, container: Container) -> list[str]:
    """`podman create …` for the job, after `create`."""
    args = [
        f"--name={container.name}",
        "--init",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
        "--log-driver=k8s-file",
        f"--log-opt=path={container.log_path}",
        f"--log-opt=max-size={LOG_MAX_SIZE}",
        f"--env-file={container.env_file}",
        f"--pull={container.pull if container.image.pull else 'never'}",
    ]
    args += [f"--label={key}={value}" for key, value in labels(spec, container).items()]
    if not container.image.tls_verify:
        args.append("--tls-verify=false")
    if container.owner is not None:
        args.append(f"--user={container.owner[0]}:{container.owner[1]}")
    args += [f"--publish={port}:{port}/tcp" for port in container.ports]
    args += limit_args(spec.limits)
    if container.attached:
        args.append("--interactive")
    if container.tty:
        args.append("--tty")
    if spec.entrypoint:
        args.append(f"--entrypoint={orjson.dumps(list(spec.entrypoint)).decode()}")
    return [*args, container.reference, *spec.cmd]


def limit_args(limits: dict[str, int]) -> list[str]:
    args = []
    memory = limits.get("memory", 0)
    if memory > 0:
        memory = max(memory, MIN_MEMORY)
        args += [f"--memory={memory}", f"--memory-swap={memory}"]
    cpu = limits.get("cpu")
    if cpu is not None:
        args.append(f"--cpu-shares={max(cpu * SHARES_PER_CPU // 1000, MIN_SHARES)}")
    nofile = _capped(limits.get("max_fd", 0), resource.RLIMIT_NOFILE)
    args.append(f"--ulimit=nofile={nofile}:{nofile}")
    nproc = _capped(0, resource.RLIMIT_NPROC)
    args.append(f"--ulimit=nproc={nproc}:{nproc}")
    return args


def _capped(wanted: int, kind: int) -> int:
    """`wanted` (0: as much as allowed) within what a container may get here: this process's
    hard limit, and for processes the kernel's pid_max (runc is refused more on this
    machine); podman's own defaults are above both on small machines."""
    soft, hard = resource.getrlimit(kind)
    ceiling = hard if hard != resource.RLIM_INFINITY else soft
    if ceiling == resource.RLIM_INFINITY:
        ceiling = 1024 * 1024
    if kind == resource.RLIMIT_NPROC:
        ceiling = min(ceiling, _read_int(PID_MAX, ceiling))
    return min(wanted, ceiling) if wanted > 0 else ceiling


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return default
