"""A job's working tree from its artifact: the local host runs `file` artifacts only, and only
those under its artifact root (ARTIFACT_ROOT).

A `file` artifact's URI is a `file://` URI (or an absolute path) of a directory, which is
copied, or of a tarball (any compression `tarfile` reads), which is unpacked with the `data`
filter (no absolute paths, no links out of the tree, no device files). A path outside the
root is refused here; `host/unpacker.py` then reads it in a process that has become the
job's uid, opening it from the root one name at a time without following a link. So a
client naming a file cannot make the host read anything the job's user could not read.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from domain.objects import Artifact

UNPACKER = Path(__file__).with_name("unpacker.py")
#: The most of the unpacker's complaint kept in a host error.
MAX_ERROR = 2000


class ArtifactError(Exception):
    """The artifact cannot become a working tree here; the message is the job's host error."""


def local_path(artifact: Artifact) -> str:
    """The absolute local path a `file` artifact names, normalized (no `.` or `..` left)."""
    if artifact.type != "file":
        raise ArtifactError(
            f"the local host runs only artifacts of type file, not {artifact.type!r} "
            f"({artifact.uri})"
        )
    parts = urlsplit(artifact.uri)
    if parts.scheme == "":
        path = artifact.uri
    elif parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ArtifactError(
            f"the local host needs a local path or a file:// URI, not {artifact.uri}"
        )
    else:
        path = unquote(parts.path)
    if "\0" in path:
        raise ArtifactError(f"the artifact {artifact.uri} holds a NUL character")
    if not path.startswith("/"):
        raise ArtifactError(f"the artifact {artifact.uri} does not name an absolute path")
    return os.path.normpath("/" + path.lstrip("/"))


def below_root(artifact: Artifact, root: Path) -> tuple[Path, str]:
    """The artifact's path as (a spelling of the root, the path relative to it). `root` is
    absolute; a path given through the root's resolved spelling is taken too."""
    path = local_path(artifact)
    for spelling in dict.fromkeys((str(root), os.path.realpath(root))):
        relative = os.path.relpath(path, spelling)
        if relative != ".." and not relative.startswith("../"):
            return Path(spelling), relative
    raise ArtifactError(
        f"the artifact {artifact.uri} is outside the artifact root {root} (ARTIFACT_ROOT)"
    )


async def unpack(
    artifact: Artifact, root: Path, target: Path, owner: tuple[int, int] | None
) -> None:
    """Fill the empty directory `target` with the artifact's tree, read and written as
    `owner` (uid, gid) when given, else as the service's own user."""
    spelling, relative = below_root(artifact, root)
    args = [sys.executable, "-I", "-S", str(UNPACKER), str(spelling), relative, str(target)]
    if owner is not None:
        args += [str(owner[0]), str(owner[1])]
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={},
        cwd="/",
    )
    try:
        _, complaint = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        reason = complaint.decode(errors="replace").strip()[-MAX_ERROR:]
        raise ArtifactError(
            f"the artifact {artifact.uri}: {reason or f'exit status {proc.returncode}'}"
        )
