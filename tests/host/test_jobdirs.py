"""Job directories of the local host: named by a validated uuid, never outside the host's root,
never through a link; older versions' directories are still adopted."""

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from applog.store import MemoryLogStore
from domain.objects import Artifact
from host.inputs import parse_job_id
from host.interface import HostEvent, JobSpec
from host.jobdir import JobDir, Record, UnsafePathError, job_path, remove
from host.local import LocalHost
from tests.host.machine import make_artifact, reachable_dir, running

ROOT = Path("/var/lib/evenflow/host/jobs")
APP = "00000000-0000-4000-8000-000000000001"
U = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

#: Ids made to look like paths, or nearly like Flynn's shape.
HOSTILE = [
    "../../x", "/etc", "host-../../x", "host-/etc", "..", ".", "", "host-", U, f"-{U}",
    f"host-{U}/../x", f"host-{U}\0", f"../-{U}", f"..-{U}", f"host-{U.upper()}",
    f"host/x-{U}", f"host-{U}-{U}", "a" * 3000, f"{'h' * 3000}-{U}",
]  # fmt: skip


def near_ids() -> st.SearchStrategy[str]:
    """Job ids close to the shape: a host part, a separator, a uuid or junk."""
    parts = st.one_of(st.text(max_size=8), st.sampled_from(["host", "..", ".", "/", "h.1"]))
    tails = st.one_of(st.uuids().map(str), st.text(), st.uuids().map(lambda u: f"{u}/../x"))
    return st.builds(lambda h, sep, t: h + sep + t, parts, st.sampled_from(["-", "/", "-/"]), tails)


@given(st.one_of(st.text(), near_ids(), st.sampled_from(HOSTILE)))
def test_a_job_directory_never_leaves_the_jobs_root(job_id: str):
    """Whatever the id, the path is refused or is `<root>/<uuid>`: one plain entry of the root."""
    try:
        path = job_path(ROOT, job_id)
    except UnsafePathError:
        assert parse_job_id(job_id) is None
        return
    assert path.parent == ROOT and os.path.realpath(path) == str(path)
    assert str(uuid.UUID(path.name)) == path.name


def test_paths_and_hostile_ids_are_refused():
    """Every id shaped like a path (or not Flynn's) is refused before any path is built."""
    for job_id in HOSTILE:
        with pytest.raises(UnsafePathError):
            job_path(ROOT, job_id)
    assert job_path(ROOT, f"h.1-{uuid.UUID(int=7)}") == ROOT / str(uuid.UUID(int=7))


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


def test_a_link_in_a_job_directorys_place_is_neither_entered_nor_removed(root: Path):
    """A link planted where a job's directory goes: the path is refused, creating it fails, and
    removing it leaves the link's target alone."""
    jobs, victim = root / "jobs", root / "victim"
    jobs.mkdir()
    victim.mkdir()
    (victim / "keep").write_text("x")
    job_id = f"h1-{uuid.uuid4()}"
    link = jobs / job_id.split("-", 1)[1]
    link.symlink_to(victim)
    with pytest.raises(UnsafePathError):
        job_path(jobs, job_id)
    with pytest.raises(UnsafePathError, match="exists already"):
        JobDir(link).create(Record(job_id, APP, "r", ""))
    with pytest.raises(UnsafePathError, match="not a directory"):
        remove(jobs, link)
    with pytest.raises(UnsafePathError, match="not a directory"):
        remove(root, victim / "keep")
    assert (victim / "keep").read_text() == "x" and link.is_symlink()


def new_host(root: Path) -> LocalHost:
    return LocalHost(
        "h1", root / "host", MemoryLogStore(), artifact_root=root, stop_grace=1.0,
        poll_interval=0.02,
    )  # fmt: skip


def spec(job_id: str, source: Path, *argv: str) -> JobSpec:
    source_artifact = Artifact("a1", "file", source.as_uri(), datetime.now(UTC))
    return JobSpec(job_id, APP, "r1", "", argv, {}, source_artifact)


async def event_of(host: LocalHost, job_id: str) -> HostEvent:
    async with asyncio.timeout(10):
        async for event in host.events():
            if event.job_id == job_id:
                return event
    raise AssertionError("no event")


async def test_the_host_refuses_a_malformed_job_id_and_makes_nothing(root: Path):
    """A start with a hostile id fails at once, and nothing appears on disk."""
    host = new_host(root)
    await host.recover()
    source = make_artifact(root)
    try:
        for job_id in HOSTILE:
            with pytest.raises(UnsafePathError):
                await host.start(spec(job_id, source, "true"))
    finally:
        await host.close()
    assert os.listdir(root / "host" / "jobs") == []
    assert not (root / "x").exists() and not Path("/x").exists()


async def test_a_job_directory_named_by_an_older_version_is_adopted(root: Path):
    """A directory named by the whole job id (as older versions named it) is recovered: its
    running job is found, stopped and forgotten; a stray link or a directory holding another
    job is left alone."""
    first = new_host(root)
    await first.recover()
    job_id = f"h1-{uuid.uuid4()}"
    await first.start(spec(job_id, make_artifact(root), "sleep", "60"))
    assert (await event_of(first, job_id)).kind == "up"
    await first.close()
    jobs = root / "host" / "jobs"
    (jobs / job_id.split("-", 1)[1]).rename(jobs / job_id)
    (jobs / "stray-link").symlink_to(root)
    shutil.copytree(jobs / job_id, jobs / "not-its-name", symlinks=True)
    second = new_host(root)
    try:
        assert await second.recover() == [job_id]
        assert (await event_of(second, job_id)).kind == "up"
        await second.stop(job_id)
        assert (await event_of(second, job_id)).kind == "exited"
        await second.forget(job_id)
    finally:
        await second.close()
    assert sorted(os.listdir(jobs)) == ["not-its-name", "stray-link"]
    assert running(root / "host") == {}
