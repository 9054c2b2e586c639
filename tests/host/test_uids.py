"""Each app's jobs run as a uid of its own: one app's job cannot read another's environment
nor signal its processes; an app keeps its uid across restarts of the host."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from applog.store import LogQuery, MemoryLogStore
from domain.objects import Artifact
from host.interface import HostEvent, JobSpec
from host.local import LocalHost
from host.uids import DEFAULT_RANGE, AppUids, check_mapped
from tests.host.machine import group, make_artifact, reachable_dir, running

APP_A, APP_B, APP_C = (str(uuid.uuid4()) for _ in range(3))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs jobs as other uids")
#: Reads another job's environment and signals it; prints what was allowed.
SNOOP = """
if grep -qz '^SECRET=' /proc/$VICTIM/environ 2>/dev/null; then echo read; else echo refused; fi
if kill -0 $VICTIM 2>/dev/null; then echo signalled; else echo refused; fi
"""


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


def new_host(root: Path, logs: MemoryLogStore) -> LocalHost:
    return LocalHost(
        "h1", root / "host", logs, artifact_root=root, stop_grace=1.0, poll_interval=0.02
    )


def spec(app_id: str, source: Path, *argv: str, **env: str) -> JobSpec:
    job_id = f"h1-{uuid.uuid4()}"
    artifact = Artifact("a1", "file", source.as_uri(), datetime.now(UTC))
    return JobSpec(job_id, app_id, "r1", "", argv, env, artifact)


async def until(host: LocalHost, job_id: str, kind: str) -> HostEvent:
    async with asyncio.timeout(10):
        async for event in host.events():
            if event.job_id == job_id and event.kind in (kind, "exited"):
                return event
    raise AssertionError("no event")


def job_process(state_dir: Path, job_id: str) -> int:
    """The pid of the job's command (the shim's child, in the shim's process group)."""
    shim = running(state_dir)[job_id]
    (pid,) = [p for p in group(shim) if p != shim]
    return pid


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


@needs_root
async def test_one_apps_job_cannot_read_or_signal_another_apps_job(root: Path):
    """App A's job runs as its own uid; B's job is refused A's /proc/<pid>/environ and signals
    to it, while another job of A may do both."""
    logs = MemoryLogStore()
    host = new_host(root, logs)
    await host.recover()
    source = make_artifact(root)
    try:
        victim = spec(APP_A, source, "sleep", "60", SECRET="a-secret")
        await host.start(victim)
        assert (await until(host, victim.job_id, "up")).kind == "up"
        pid = str(job_process(root / "host", victim.job_id))
        snoops = {app: spec(app, source, "sh", "-c", SNOOP, VICTIM=pid) for app in (APP_B, APP_A)}
        for snoop in snoops.values():
            await host.start(snoop)
            assert (await until(host, snoop.job_id, "exited")).exit_status == 0
        said = {
            app: [line.msg for line in logs.recent(app, None, LogQuery(job_id=s.job_id))[0]]
            for app, s in snoops.items()
        }
        assert said == {APP_B: ["refused", "refused"], APP_A: ["read", "signalled"]}
        assert uid_of(int(pid)) == DEFAULT_RANGE[0]
    finally:
        await host.close()


@needs_root
async def test_an_app_keeps_its_uid_across_restarts_and_a_new_app_gets_another(root: Path):
    """uids are allocated once per app and kept in the host's state: a restarted host gives
    B's next job B's uid, and C a uid nobody else has."""
    logs = MemoryLogStore()
    source = make_artifact(root)
    seen: dict[str, int] = {}

    async def run(host: LocalHost, app: str) -> None:
        job = spec(app, source, "sleep", "60")
        await host.start(job)
        assert (await until(host, job.job_id, "up")).kind == "up"
        seen.setdefault(app, uid_of(job_process(root / "host", job.job_id)))
        assert uid_of(job_process(root / "host", job.job_id)) == seen[app]

    first = new_host(root, logs)
    await first.recover()
    await run(first, APP_A)
    await run(first, APP_B)
    await first.close()
    second = new_host(root, logs)
    await second.recover()
    try:
        await run(second, APP_B)
        await run(second, APP_C)
    finally:
        await second.close()
    assert sorted(seen.values()) == [DEFAULT_RANGE[0], DEFAULT_RANGE[0] + 1, DEFAULT_RANGE[0] + 2]
    assert seen[APP_A] < seen[APP_B] < seen[APP_C]


def test_uids_are_kept_in_a_file_and_the_range_can_run_out(tmp_path: Path):
    """A new app gets the lowest free uid, written down at once; a full range is an error that
    names the setting; a job directory's uid is adopted unless another app holds it."""
    uids = AppUids(tmp_path / "uids.json", 10, 11)
    assert uids.owner("a") == (10, 10) and uids.owner("b") == (11, 11)
    assert uids.owner("a") == (10, 10)
    with pytest.raises(ValueError, match="no uid left in JOB_UID_RANGE 10-11"):
        uids.owner("c")
    again = AppUids(tmp_path / "uids.json", 10, 11)
    again.adopt("c", 10)  # taken by a: ignored
    assert again.owner("b") == (11, 11)
    with pytest.raises(ValueError):
        again.owner("c")
    fresh = AppUids(tmp_path / "other.json", 10, 12)
    fresh.adopt("c", 12)
    assert fresh.owner("c") == (12, 12) and fresh.owner("d") == (10, 10)


def test_a_range_outside_the_user_namespace_is_refused(tmp_path: Path):
    """In a user namespace mapping 0-65535, a range above it is refused with a clear error."""
    uid_map = tmp_path / "uid_map"
    uid_map.write_text("         0     100000      65536\n")
    check_mapped(1000, 2000, [uid_map])
    with pytest.raises(ValueError, match="not mapped in this user namespace"):
        check_mapped(*DEFAULT_RANGE, [uid_map])
