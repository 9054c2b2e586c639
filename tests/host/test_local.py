"""The local host running real processes: commands, env, ports, logs, limits, stop, recovery."""

import asyncio
import io
import os
import tarfile
import time
import urllib.request
from pathlib import Path

from applog.store import LogQuery, MemoryLogStore
from host.local import LocalHost
from host.uids import DEFAULT_RANGE
from tests.host.local_jobs import (
    APP,
    AS_ROOT,
    artifact,
    ended,
    jid,
    lines,
    new_host,
    next_event,
    spec,
)
from tests.host.machine import WEB_PY, group, make_artifact, running


async def test_a_job_runs_with_its_env_and_its_output_is_logged_line_by_line(
    host: LocalHost, root: Path, logs: MemoryLogStore
):
    """stdout and stderr lines reach the app log with job, stream and host; the job sees its env."""
    source = artifact(make_artifact(root))
    script = 'echo "$GREETING from $FLYNN_JOB_ID in $(basename $PWD)"; echo oops >&2; printf last'
    await host.start(spec(jid("a"), source, "sh", "-c", script))
    assert (await next_event(host, jid("a"))).kind == "up"
    end = await next_event(host, jid("a"))
    assert (end.kind, end.exit_status, end.error, end.started) == ("exited", 0, "", True)
    assert sorted(lines(logs, jid("a"))) == [
        ("stderr", "oops"), ("stdout", f"hi from {jid('a')} in work"), ("stdout", "last"),
    ]  # fmt: skip
    (first, *_), _ = logs.recent(APP, 1, LogQuery(job_id=jid("a")))
    assert (first.host_id, first.process_type) == ("h1", "")


async def test_a_job_with_a_port_is_up_once_the_port_accepts_connections(
    host: LocalHost, root: Path, logs: MemoryLogStore
):
    """PORT is allocated; `up` comes once the server listens, and it serves."""
    source = artifact(make_artifact(root, **{"web.py": WEB_PY}))
    await host.start(spec(jid("web"), source, "python3", "web.py", ports=1))
    assert (await next_event(host, jid("web"))).kind == "up"
    (_, msg), *_ = lines(logs, jid("web")) or [("", "")]
    port = int(msg.rsplit(" ", 1)[1])
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
    )
    assert body == f"hello from {jid('web')}\n".encode()
    await host.stop(jid("web"))
    end = await next_event(host, jid("web"))
    assert (end.kind, end.exit_status) == ("exited", 143)


async def test_a_port_that_never_opens_ends_the_job_with_a_host_error(
    root: Path, logs: MemoryLogStore
):
    """No connection within up_timeout: the job is stopped and its exit says why."""
    host = new_host(root, logs, up_timeout=0.3)
    await host.recover()
    try:
        await host.start(spec(jid("deaf"), artifact(make_artifact(root)), "sleep", "60", ports=1))
        end = await next_event(host, jid("deaf"))
    finally:
        await host.close()
    assert end.kind == "exited" and end.started
    assert "did not accept connections within 0.3 s" in end.error


async def test_stopping_kills_the_whole_process_tree(host: LocalHost, root: Path):
    """SIGTERM reaches every process of the job; one ignoring it is killed after the grace."""
    source = artifact(make_artifact(root))
    script = "trap '' TERM; sleep 60 & sleep 60; wait"
    await host.start(spec(jid("tree"), source, "sh", "-c", script))
    assert (await next_event(host, jid("tree"))).kind == "up"
    pgid = running(root / "host")[jid("tree")]
    async with asyncio.timeout(10):
        while len(group(pgid)) < 4:  # the shim, sh and two sleeps
            await asyncio.sleep(0.01)
    await host.stop(jid("tree"))
    end = await next_event(host, jid("tree"))
    assert end.kind == "exited" and end.error == ""
    assert group(pgid) == []


async def test_artifacts_other_than_local_files_are_refused_with_a_host_error(
    host: LocalHost, root: Path
):
    """A docker artifact, or a file artifact that is not local, fails with a clear error."""
    await host.start(spec(jid("d"), artifact("https://example.com/i", "docker"), "true"))
    await host.start(spec(jid("h"), artifact("https://example.com/slug.tgz"), "true"))
    await host.start(spec(jid("m"), artifact(root / "no" / "such" / "dir"), "true"))
    errors = {}
    for job_id in (jid("d"), jid("h"), jid("m")):
        event = await next_event(host, job_id)
        assert (event.kind, event.started) == ("exited", False)
        errors[job_id] = event.error
    assert "only artifacts of type file, not 'docker'" in errors[jid("d")]
    assert "a local path or a file:// URI" in errors[jid("h")]
    assert "does not exist" in errors[jid("m")]


async def test_a_tarball_artifact_becomes_the_working_tree(
    host: LocalHost, root: Path, logs: MemoryLogStore
):
    """A .tar.gz file artifact is unpacked into the job's working directory."""
    data = b"from the tarball\n"
    tarball = root / "app.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("data/hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    await host.start(spec(jid("tar"), artifact(tarball), "cat", "data/hello.txt"))
    assert (await next_event(host, jid("tar"))).kind == "up"
    assert (await next_event(host, jid("tar"))).exit_status == 0
    assert lines(logs, jid("tar")) == [("stdout", "from the tarball")]


async def test_a_command_that_cannot_run_is_a_start_failure(host: LocalHost, root: Path):
    """An unknown command never starts: exited, not started, with the reason."""
    await host.start(spec(jid("x"), artifact(make_artifact(root)), "no-such-command"))
    event = await next_event(host, jid("x"))
    assert (event.kind, event.started) == ("exited", False)
    assert event.error == "no-such-command: command not found"


async def test_resource_limits_and_the_job_user_apply(
    host: LocalHost, root: Path, logs: MemoryLogStore
):
    """max_fd and memory become RLIMIT_NOFILE and RLIMIT_AS; as root, the first app's jobs run
    as the first uid of the range."""
    script = "ulimit -n; ulimit -v; id -u"
    await host.start(spec(jid("l"), artifact(make_artifact(root)), "sh", "-c", script,
                          max_fd=321, memory=512 * 1024 * 1024))  # fmt: skip
    await next_event(host, jid("l"))
    assert (await next_event(host, jid("l"))).exit_status == 0
    nofile, virtual_kib, uid = (msg for _, msg in lines(logs, jid("l")))
    assert (nofile, virtual_kib) == ("321", str(512 * 1024))
    assert int(uid) == (DEFAULT_RANGE[0] if AS_ROOT else os.getuid())


async def test_a_new_host_recovers_running_jobs_and_learns_how_the_others_ended(
    root: Path, logs: MemoryLogStore
):
    """Closing a host leaves its jobs running; a host on the same state directory finds them:
    still-running ones come up again, one that ended meanwhile reports its exit status."""
    first = new_host(root, logs)
    await first.recover()
    source = artifact(make_artifact(root))
    await first.start(spec(jid("long"), source, "sleep", "60"))
    await first.start(spec(jid("short"), source, "sh", "-c", "sleep 0.5; exit 7"))
    for job_id in (jid("long"), jid("short")):
        assert (await next_event(first, job_id)).kind == "up"
    await first.close()
    deadline = time.monotonic() + 10
    while jid("short") in running(root / "host") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    second = new_host(root, logs)
    try:
        assert sorted(await second.recover()) == sorted([jid("long"), jid("short")])
        assert (await ended(second, jid("short"))).exit_status == 7
        assert (await next_event(second, jid("long"))).kind == "up"
        await second.stop(jid("long"))
        assert (await next_event(second, jid("long"))).kind == "exited"
        await second.forget(jid("long"))
    finally:
        await second.close()
    assert running(root / "host") == {}
    assert list((root / "host" / "jobs").iterdir()) == [root / "host" / "jobs" / jid("short")[3:]]
