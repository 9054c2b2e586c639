"""Who local jobs run as: an unprivileged user when the service runs as root."""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

logger = logging.getLogger(__name__)


def job_owner(user: str) -> tuple[int, int] | None:
    """The (uid, gid) jobs run as: `user` when the service runs as root, else the service's."""
    if os.geteuid() != 0 or not user or user == "root":
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"the job user {user!r} does not exist on this machine") from None
    return entry.pw_uid, entry.pw_gid


def warn_if_unreachable(path: Path, uid: int, gid: int) -> None:
    """Say so when the job user cannot reach `path` (its jobs would fail to start)."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == uid or st.st_mode & 0o001 or (st.st_gid == gid and st.st_mode & 0o010):
            continue
        logger.warning(
            "jobs run as uid %d cannot enter %s (mode %o): make it traversable (chmod o+x) "
            "or choose another data directory or JOB_USER",
            uid, parent, st.st_mode & 0o777,
        )  # fmt: skip
        return
