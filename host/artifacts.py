"""A job's working tree from its artifact: the local host runs `file` artifacts only.

A `file` artifact's URI is a `file://` URI (or a plain local path) of a directory, which is
copied, or of a tarball (any compression `tarfile` reads), which is unpacked with the `data`
filter (no absolute paths, no links out of the tree, no device files).
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from eventstore.objects import Artifact


class ArtifactError(Exception):
    """The artifact cannot become a working tree here; the message is the job's host error."""


def local_path(artifact: Artifact) -> Path:
    """The local path a `file` artifact names."""
    if artifact.type != "file":
        raise ArtifactError(
            f"the local host runs only artifacts of type file, not {artifact.type!r} "
            f"({artifact.uri})"
        )
    parts = urlsplit(artifact.uri)
    if parts.scheme == "":
        return Path(artifact.uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ArtifactError(
            f"the local host needs a local path or a file:// URI, not {artifact.uri}"
        )
    return Path(unquote(parts.path))


def unpack(artifact: Artifact, target: Path, owner: tuple[int, int] | None) -> None:
    """Make `target` (not existing yet) the artifact's tree, owned by `owner` (uid, gid) if given.

    Blocking: run it in a thread.
    """
    source = local_path(artifact)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    elif source.is_file() and tarfile.is_tarfile(source):
        target.mkdir()
        with tarfile.open(source) as tar:
            try:
                tar.extractall(target, filter="data")
            except tarfile.FilterError as exc:
                raise ArtifactError(f"the tarball {source} is unsafe to unpack: {exc}") from exc
    elif source.exists():
        raise ArtifactError(f"{source} is neither a directory nor a tarball")
    else:
        raise ArtifactError(f"the artifact {artifact.uri} does not exist on this host")
    if owner is not None:
        _chown_tree(target, *owner)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)
