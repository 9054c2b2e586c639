"""Artifacts of the local host: only under the artifact root, never through a link, read with
the job's rights; directories copied, tarballs unpacked safely."""

import io
import os
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.objects import Artifact
from host.artifacts import ArtifactError, below_root, unpack
from host.uids import DEFAULT_RANGE
from tests.host.machine import reachable_dir

AS_ROOT = os.geteuid() == 0
#: The job's user: a uid of the range when root (the tests run as root), else ourselves.
OWNER = (DEFAULT_RANGE[0], DEFAULT_RANGE[0]) if AS_ROOT else None
needs_root = pytest.mark.skipif(not AS_ROOT, reason="only root can read what the job cannot")


@pytest.fixture
def root() -> Iterator[Path]:
    """An artifact root beside an empty working tree `<root>/../work`, both reachable."""
    with reachable_dir() as base:
        (base / "artifacts").mkdir(mode=0o755)
        (base / "work").mkdir(mode=0o700)
        if OWNER is not None:
            os.chown(base / "work", *OWNER)
        yield base / "artifacts"


def artifact(uri: str | Path) -> Artifact:
    return Artifact("a", "file", uri.as_uri() if isinstance(uri, Path) else uri, datetime.now(UTC))


async def unpacked(root: Path, uri: str | Path) -> Path:
    work = root.parent / "work"
    await unpack(artifact(uri), root, work, OWNER)
    return work


async def refusal(root: Path, uri: str | Path) -> str:
    with pytest.raises(ArtifactError) as info:
        await unpacked(root, uri)
    return str(info.value)


async def test_a_directory_artifact_is_copied_into_a_tree_only_the_job_user_enters(root: Path):
    """The tree is copied whole, owned by the job's user, and closed to every other uid."""
    source = root / "app dir"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "run").write_text("#!/bin/sh\n")
    work = await unpacked(root, source)
    assert (work / "bin" / "run").read_text() == "#!/bin/sh\n"
    assert work.stat().st_mode & 0o777 == 0o700
    if OWNER is not None:
        assert (work / "bin" / "run").stat().st_uid == OWNER[0]


async def test_an_unsafe_tarball_is_refused(root: Path):
    """A member escaping the working tree is a host error, not a file written elsewhere."""
    tarball = root / "evil.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert "unsafe to unpack" in await refusal(root, tarball)
    assert not (root.parent / "escaped.txt").exists()


async def test_a_path_outside_the_artifact_root_is_refused(root: Path):
    """Paths out of the root (absolute, climbing with `..`, encoded) never reach the disk."""
    secret = root.parent / "secret"
    secret.write_text("root's\n")
    for uri in (
        "file:///etc/shadow",
        "/etc/shadow",
        secret.as_uri(),
        f"file://{root}/../secret",
        f"file://{root}/%2E%2E/secret",
        "file:///",
    ):
        assert "is outside the artifact root" in await refusal(root, uri), uri
    assert "does not name an absolute path" in await refusal(root, "relative/dir")
    assert "holds a NUL character" in await refusal(root, f"file://{root}/a%00b")
    assert os.listdir(root.parent / "work") == []


async def test_a_symbolic_link_is_never_followed_on_the_way_to_the_artifact(root: Path):
    """A link in the root, as the artifact or as a directory on its path, is refused, even
    when it points inside the root."""
    outside = root.parent / "outside"
    outside.mkdir(mode=0o755)
    (outside / "app.tar").write_bytes(b"")
    (root / "inside").mkdir()
    (root / "to-outside").symlink_to(outside)
    (root / "to-etc").symlink_to("/etc")
    (root / "to-inside").symlink_to(root / "inside")
    for name in ("to-outside", "to-outside/app.tar", "to-etc/shadow", "to-inside"):
        reason = await refusal(root, root / name)
        assert f"{root / name.split('/')[0]} is a symbolic link" in reason, name
    assert os.listdir(root.parent / "work") == []


async def test_links_inside_a_directory_artifact_are_copied_as_links(root: Path):
    """A link in the tree stays a link: what it points to is read later with the job's rights."""
    source = root / "app"
    source.mkdir()
    (source / "shadow").symlink_to("/etc/shadow")
    work = await unpacked(root, source)
    assert os.readlink(work / "shadow") == "/etc/shadow"


@needs_root
async def test_a_file_the_job_user_cannot_read_fails_the_unpacking(root: Path):
    """A root-only tarball, or a root-only file in a directory, is refused: the artifact is read
    with the job's rights, not the service's."""
    tarball = root / "private.tar"
    with tarfile.open(tarball, "w"):
        pass
    tarball.chmod(0o600)
    assert "cannot be read by the job's user (permission denied)" in await refusal(root, tarball)
    source = root / "app"
    source.mkdir()
    (source / "key.pem").write_text("private\n")
    (source / "key.pem").chmod(0o600)
    reason = await refusal(root, source)
    assert "cannot copy ./key.pem" in reason and "Permission denied" in reason


async def test_a_fifo_or_a_plain_file_is_refused_without_hanging(root: Path):
    """Neither a directory nor a tarball: a clear refusal, at once."""
    os.mkfifo(root / "pipe")
    (root / "notes.txt").write_text("not a tarball\n")
    for name in ("pipe", "notes.txt"):
        assert "neither a directory nor a tarball" in await refusal(root, root / name)


@given(
    st.one_of(
        st.text(),
        st.lists(st.sampled_from(["..", ".", "", "a", "%2e%2e", "/", "//"]), max_size=8).map(
            lambda parts: "file:///srv/artifacts/" + "/".join(parts)
        ),
        st.text().map(lambda tail: "/srv/artifacts/" + tail),
    )
)
def test_no_uri_resolves_to_a_path_outside_the_root(uri: str):
    """Whatever the URI, the path handed to the unpacker lies under the root, with no `..`."""
    root = Path("/srv/artifacts")
    try:
        spelling, relative = below_root(artifact(uri), root)
    except ArtifactError:
        return
    assert spelling == root
    assert ".." not in relative.split("/") and not relative.startswith("/")
    normal = os.path.normpath(root / relative)
    assert normal == str(root) or normal.startswith(f"{root}/")
