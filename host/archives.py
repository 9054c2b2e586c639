"""OCI archives under the artifact root, opened for `podman` to load as the job's user may.

The path must lie under ARTIFACT_ROOT (host/artifacts.py). It is opened from the root one name
at a time, never through a symbolic link, and every directory on the way must be one the job's
user may enter, and the file one it may read (by its mode bits: the service runs as root and
reads anything): a client naming a file cannot make the host load what the job's user could
not read. Podman then reads the open file (`/dev/fd/N`), not the path, which could change.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from domain.objects import Artifact
from host.artifacts import ArtifactError, below_root
from host.podman_cli import Podman


def open_archive(path: str, root: Path, owner: tuple[int, int] | None) -> int:
    """A read-only fd of the archive at `path` (the caller closes it); ArtifactError if the
    job's user (`owner`, None: the service's own) may not read it, or it is not under `root`."""
    spelling, relative = below_root(Artifact("", "file", path, datetime.now(UTC)), root)
    names = [name for name in relative.split("/") if name not in ("", ".")]
    if not names:
        raise ArtifactError(f"the archive {path} is the artifact root itself")
    fd = os.open(spelling, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for at, name in enumerate(names):
            last = at == len(names) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (0 if last else os.O_DIRECTORY)
            try:
                step = os.open(name, flags, dir_fd=fd)
            except OSError as exc:
                raise ArtifactError(f"the archive {path}: {'/'.join(names[: at + 1])} "
                                    f"{_reason(exc)}") from None  # fmt: skip
            os.close(fd)
            fd = step
            mode = os.fstat(fd)
            if last and not stat.S_ISREG(mode.st_mode):
                raise ArtifactError(f"the archive {path} is not a regular file")
            if not _may(mode, owner, 4 if last else 1):
                raise ArtifactError(
                    f"the archive {path}: the job's user may not "
                    f"{'read' if last else 'enter'} {'/'.join(names[: at + 1])}"
                )
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _may(st: os.stat_result, owner: tuple[int, int] | None, bit: int) -> bool:
    """Whether `owner` has permission `bit` (4 read, 1 execute) by the mode bits."""
    if owner is None:
        return True  # the service's own user: the open itself was the check
    uid, gid = owner
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid == gid:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link: links are not followed"
    if exc.errno == errno.ENOENT:
        return "does not exist on this host"
    if exc.errno == errno.ENOTDIR:
        return "is not a directory"
    return f"cannot be opened ({exc.strerror})"


class ArchiveImages:
    """Images loaded from OCI archives into podman's storage, once per version of a file."""

    def __init__(self, podman: Podman, root: Path) -> None:
        self._podman, self._root = podman, root
        self._loaded: dict[tuple[int, int, int, int], str] = {}  # file identity -> image id

    async def image(self, path: str, owner: tuple[int, int] | None) -> str:
        """The id of the image in the archive at `path` (ArtifactError, PodmanError)."""
        fd = await asyncio.to_thread(open_archive, path, self._root, owner)
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            known = self._loaded.get(key)
            if known and (await self._podman.run("image", "exists", known)).returncode == 0:
                return known
            out = await self._podman.check("pull", "--quiet", f"oci-archive:/dev/fd/{fd}",
                                           pass_fds=(fd,))  # fmt: skip
        finally:
            os.close(fd)
        lines = out.decode().split()
        if not lines:
            raise ArtifactError(f"the archive {path} holds no image")
        self._loaded[key] = lines[-1]
        return lines[-1]
