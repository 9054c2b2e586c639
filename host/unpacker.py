"""Unpacks one `file` artifact into a job's working tree:
`python unpacker.py <artifact root> <path under the root> <target directory> [<uid> <gid>]`.

Given a uid, it becomes that uid (the job's) before it touches the artifact, so that it reads
only what the job's user may read. It opens the artifact from the root one name at a time,
refusing a symbolic link, `..` or anything but a directory or a regular file on the way; a
directory is copied (links inside it are copied as links, never followed), a tarball
unpacked with the `data` filter. It exits 1 with the reason on stderr, which becomes the
job's host error.

Standard library only, and run by path: it must not depend on the service's packages.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tarfile

# Imported while the service's files can still be read: the job's uid may be unable to read
# the interpreter's library, and tarfile imports these only once it meets compressed data.
import gzip  # noqa: F401  # isort: skip

with contextlib.suppress(ImportError):
    import bz2  # noqa: F401
    import lzma  # noqa: F401


class Refused(Exception):
    """The artifact cannot be unpacked; the message says why."""


_REASONS = {
    errno.ELOOP: "is a symbolic link: links are not followed",
    errno.ENOENT: "does not exist on this host",
    errno.ENOTDIR: "is not a directory",
    errno.EACCES: "cannot be read by the job's user (permission denied)",
}


#: How directories on the way are opened: to look up names in them, which needs only the
#: right to traverse them (O_PATH), not to list them.
_ON_THE_WAY = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
#: How the artifact itself is opened; O_NONBLOCK, so that a FIFO cannot hang it.
_ARTIFACT = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def open_below(root: str, relative: str) -> int:
    """A descriptor of `root/relative`, opened one name at a time, never through a link."""
    fd = os.open(root, _ON_THE_WAY)
    names = [name for name in relative.split("/") if name not in ("", ".")]
    for i, name in enumerate(names):
        shown = os.path.join(root, *names[: i + 1])
        try:
            if name == "..":
                raise Refused(f"{shown}: '..' is not followed")
            # O_NOFOLLOW alone does not refuse a link with O_PATH: look first, and let
            # O_NOFOLLOW refuse one swapped in meanwhile.
            if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise OSError(errno.ELOOP, "a symbolic link")
            flags = _ARTIFACT if i == len(names) - 1 else _ON_THE_WAY
            child = os.open(name, flags | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            reason = _REASONS.get(exc.errno or 0, exc.strerror)
            raise Refused(f"{shown} {reason}") from None
        finally:
            os.close(fd)
        fd = child
    return fd


def copy_tree(fd: int, target: str) -> None:
    os.fchdir(fd)
    try:
        shutil.copytree(".", target, symlinks=True, dirs_exist_ok=True)
    except shutil.Error as exc:
        source, _, why = exc.args[0][0]
        raise Refused(f"cannot copy {source}: {why}") from None


def unpack_tarball(fd: int, target: str) -> None:
    with os.fdopen(fd, "rb") as f:
        if not tarfile.is_tarfile(f):
            raise Refused("it is neither a directory nor a tarball")
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            try:
                tar.extractall(target, filter="data")
            except tarfile.FilterError as exc:
                raise Refused(f"the tarball is unsafe to unpack: {exc}") from None


def become(uid: int, gid: int) -> None:
    """Drop every privilege: the job's uid and gid, no supplementary groups."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def main(root: str, relative: str, target: str, uid: str = "", gid: str = "") -> int:
    try:
        if uid:
            become(int(uid), int(gid))
        fd = open_below(root, relative)
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            copy_tree(fd, target)
        elif stat.S_ISREG(mode):
            unpack_tarball(fd, target)
        else:
            raise Refused("it is neither a directory nor a tarball")
        os.chmod(target, 0o700)  # the job's own: other uids do not enter it
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:  # whatever it is, it is the job's host error
        print(f"cannot unpack it: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
