"""The shapes a host accepts from clients: job ids, host ids, command lines, environments.

The API checks them when a request comes in (commands/jobs.py, service/settings.py), and
the local host checks them again before it uses them, so that nothing a client sent becomes a
path, a process argument or an environment entry unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import attrs

#: Flynn's host ids are host names without their dashes (host/host.go): letters, digits,
#: dots; never "." or "..", since the first character is a letter or digit.
HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,63}")
#: The lower-case dashed form Flynn's random.UUID() makes; one spelling per job, so that two
#: ids never name one directory.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
JOB_ID_SHAPE = "<host id>-<uuid> (a host id of letters, digits, '.' or '_', a lower-case uuid)"


@attrs.frozen
class JobId:
    """A job id in Flynn's shape (pkg/cluster/utils.go ExtractHostID): `<host id>-<uuid>`."""

    host_id: str
    uuid: str

    def __str__(self) -> str:
        return f"{self.host_id}-{self.uuid}"


def parse_job_id(text: str) -> JobId | None:
    """The parts of a well-formed job id; None for anything else."""
    host_id, dash, uuid = text.partition("-")
    if dash and HOST_ID.fullmatch(host_id) and UUID.fullmatch(uuid):
        return JobId(host_id, uuid)
    return None


def valid_host_id(text: str) -> bool:
    return HOST_ID.fullmatch(text) is not None


def command_error(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Why a command line and environment cannot be given to execve, or None if they can."""
    if any("\0" in arg for arg in argv):
        return "an argument of the command holds a NUL character"
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            return f"the environment variable name {name[:64]!r} is empty or holds '=' or NUL"
        if "\0" in value:
            return f"the value of the environment variable {name[:64]} holds a NUL character"
    return None
