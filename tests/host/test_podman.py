"""The podman host running real containers: env, ports, logs, exits, OOM, limits, isolation,
images from the storage or an OCI archive, attached jobs and recovery."""

import asyncio
import json
import os
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from applog.store import LogQuery, MemoryLogStore
from domain.objects import Artifact
from host.interface import AttachRequest, JobSpec
from host.podman import PodmanHost
from host.uids import DEFAULT_RANGE
from tests.host.images import busybox_image, containers, oci_archive, podman, remove_containers
from tests.host.local_jobs import ended, next_event

APP, OTHER_APP = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def image() -> str:
    return busybox_image()


@pytest.fixture
def host_id() -> Iterator[str]:
    """A host id of this test's own: its containers are told apart, and removed at the end."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    remove_containers(name)


def new_host(root: Path, logs: MemoryLogStore, host_id: str, **options: object) -> PodmanHost:
    settings = {"stop_grace": 1.0, "up_timeout": 10.0, "poll_interval": 0.05,
                "sync_interval": 1.0} | options  # fmt: skip
    return PodmanHost(host_id, root / "host", logs, artifact_root=root, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def host(root: Path, logs: MemoryLogStore, host_id: str) -> AsyncIterator[PodmanHost]:
    h = new_host(root, logs, host_id)
    await h.recover()
    yield h
    await h.close()


def jid(host: PodmanHost, name: str) -> str:
    return f"{host.id}-{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def docker(uri: str) -> Artifact:
    return Artifact("a1", "docker", uri, datetime.now(UTC))


def spec(job_id: str, uri: str, *cmd: str, ports: int = 0, app: str = APP,
         entrypoint: tuple[str, ...] = (), env: dict[str, str] | None = None,
         **limits: int) -> JobSpec:  # fmt: skip
    env = {"FLYNN_JOB_ID": job_id, "GREETING": "hi"} | (env or {})
    process_type = "web" if ports else ""
    return JobSpec(job_id, app, "r1", process_type, (*entrypoint, *cmd), env, docker(uri), ports,
                   limits, entrypoint=entrypoint, cmd=cmd)  # fmt: skip


def lines(logs: MemoryLogStore, job_id: str, app: str = APP) -> list[tuple[str, str]]:
    found, _ = logs.recent(app, None, LogQuery(job_id=job_id))
    return [(line.stream, line.msg) for line in found]


def inspect(job_id: str) -> dict:
    answer: dict = json.loads(podman("inspect", "--type=container", job_id).stdout)[0]
    return answer


async def test_a_container_runs_with_its_env_and_its_output_is_logged(
    host: PodmanHost, image: str, logs: MemoryLogStore
):
    """The release's env and Flynn's reach the container; stdout and stderr lines reach the
    app log with their stream; exit 0 is reported after `up`."""
    job = jid(host, "env")
    script = 'echo "$GREETING from $FLYNN_JOB_ID"; echo oops >&2; printf last'
    await host.start(spec(job, f"containers-storage:{image}", "sh", "-c", script))
    assert (await next_event(host, job)).kind == "up"
    end = await next_event(host, job)
    assert (end.kind, end.exit_status, end.error, end.started) == ("exited", 0, "", True)
    assert sorted(lines(logs, job)) == [("stderr", "oops"), ("stdout", f"hi from {job}"),
                                        ("stdout", "last")]  # fmt: skip


async def test_a_web_container_is_up_once_its_published_port_answers(host: PodmanHost, image: str):
    """PORT is a free port of the host, published to the same port in the container; `up`
    comes once it answers, and stopping ends it with SIGTERM's status."""
    job = jid(host, "web")
    serve = ("sh", "-c", 'exec httpd -f -p "$PORT" -h /www')
    await host.start(spec(job, f"containers-storage:{image}", ports=1, entrypoint=serve))
    assert (await next_event(host, job)).kind == "up"
    port = int(inspect(job)["Config"]["Labels"]["evenflow.ports"])
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
    )
    assert body == b"hello from the image\n"
    await host.stop(job)
    end = await next_event(host, job)
    assert (end.kind, end.exit_status, end.error) == ("exited", 143, "")


async def test_a_crash_is_reported_with_its_exit_status(host: PodmanHost, image: str):
    """exit 3 inside: exited, started, exit status 3, no host error."""
    job = jid(host, "crash")
    await host.start(spec(job, f"containers-storage:{image}", "sh", "-c", "exit 3"))
    end = await ended(host, job)
    assert (end.exit_status, end.error, end.started) == (3, "", True)


async def test_the_release_command_goes_over_the_images(
    host: PodmanHost, image: str, logs: MemoryLogStore
):
    """No command: the image's CMD runs; `cmd` alone replaces the image's CMD; `entrypoint`
    replaces its ENTRYPOINT."""
    plain, cmd, entry = jid(host, "plain"), jid(host, "cmd"), jid(host, "entry")
    await host.start(spec(plain, f"containers-storage:{image}"))
    await host.start(spec(cmd, f"containers-storage:{image}", "echo", "from cmd"))
    await host.start(spec(entry, f"containers-storage:{image}", "from entrypoint",
                          entrypoint=("echo",)))  # fmt: skip
    for job in (plain, cmd, entry):
        assert (await ended(host, job)).exit_status == 0
    assert inspect(plain)["Config"]["Cmd"] == ["sh"]
    assert lines(logs, cmd) == [("stdout", "from cmd")]
    assert lines(logs, entry) == [("stdout", "from entrypoint")]


async def test_an_image_that_cannot_be_had_fails_the_job_with_a_host_error(
    root: Path, logs: MemoryLogStore, host_id: str, image: str
):
    """A missing local image, a registry that does not resolve (pull policy never: not even
    tried), a malformed reference and a non-docker artifact: failed, not started, and why."""
    host = new_host(root, logs, host_id, pull="never")
    await host.recover()
    try:
        cases = {
            "missing": "containers-storage:localhost/no-such-image:1",
            "never": "docker://registry.invalid/app:1",
            "bad": "docker://--privileged",
        }
        for name, uri in cases.items():
            await host.start(spec(jid(host, name), uri, "true"))
        errors = {}
        for name in cases:
            event = await next_event(host, jid(host, name))
            assert (event.kind, event.started) == ("exited", False)
            errors[name] = event.error
    finally:
        await host.close()
    assert "no-such-image:1: image not known" in errors["missing"]
    assert "registry.invalid/app:1: image not known" in errors["never"]
    assert "does not name an image reference" in errors["bad"]
    assert containers(host_id) == {}


async def test_a_container_over_its_memory_limit_is_reported_out_of_memory(
    host: PodmanHost, image: str
):
    """The memory limit holds: the job is killed (137) and its host error says why."""
    job = jid(host, "oom")
    hog = "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"
    await host.start(spec(job, f"containers-storage:{image}", "sh", "-c", hog,
                          memory=16 * 1024 * 1024))  # fmt: skip
    end = await ended(host, job)
    assert (end.exit_status, end.started) == (137, True)
    assert "out of memory" in end.error


async def test_limits_apply_and_each_app_has_its_own_user_and_namespaces(
    host: PodmanHost, image: str, logs: MemoryLogStore
):
    """max_fd, memory and cpu become the container's limits; as root, two apps' jobs run as
    two uids of the range; a job sees only its own processes."""
    script = "ulimit -n; id -u; ps -o pid | wc -l"
    one, two = jid(host, "one"), jid(host, "two")
    await host.start(spec(one, f"containers-storage:{image}", "sh", "-c", script, max_fd=321,
                          memory=64 * 1024 * 1024, cpu=500))  # fmt: skip
    await host.start(spec(two, f"containers-storage:{image}", "sh", "-c", script, app=OTHER_APP))
    for job in (one, two):
        assert (await ended(host, job)).exit_status == 0
    nofile, uid, processes = (msg for _, msg in lines(logs, one))
    (_, other_uid), *_ = [(s, m) for s, m in lines(logs, two, OTHER_APP)][1:2]
    assert nofile == "321"
    assert int(processes) <= 5  # a header, init, sh, ps and wc: none of the host's
    if AS_ROOT:
        assert {int(uid), int(other_uid)} == {DEFAULT_RANGE[0], DEFAULT_RANGE[0] + 1}
    config = inspect(one)["HostConfig"]
    assert (config["Memory"], config["CpuShares"]) == (64 * 1024 * 1024, 512)
    assert config["CapDrop"] and "no-new-privileges" in config["SecurityOpt"]


async def test_an_oci_archive_under_the_artifact_root_is_loaded_and_run(
    host: PodmanHost, root: Path, logs: MemoryLogStore
):
    """An archive under ARTIFACT_ROOT runs; one outside it, behind a link, or that the job's
    user may not read is refused with the reason."""
    archive = oci_archive(root / "image.tar")
    os.symlink(archive, root / "link.tar")
    secret = root / "secret.tar"
    secret.write_bytes(archive.read_bytes())
    os.chmod(secret, 0o600)
    cases = {"ok": archive, "outside": Path("/etc/passwd"), "link": root / "link.tar",
             "secret": secret}  # fmt: skip
    for name, path in cases.items():
        await host.start(spec(jid(host, name), f"oci-archive:{path}", "echo", "from the archive"))
    assert (await ended(host, jid(host, "ok"))).exit_status == 0
    assert lines(logs, jid(host, "ok")) == [("stdout", "from the archive")]
    errors = {name: (await ended(host, jid(host, name))).error for name in cases if name != "ok"}
    assert "outside the artifact root" in errors["outside"]
    assert "is a symbolic link" in errors["link"]
    if AS_ROOT:
        assert "the job's user may not read" in errors["secret"]


async def test_an_env_value_podman_cannot_pass_fails_the_job(host: PodmanHost, image: str):
    """A line break in a value cannot go through podman's env file: a host error says so."""
    job = jid(host, "env")
    await host.start(spec(job, f"containers-storage:{image}", "true", env={"CERT": "a\nb"}))
    end = await next_event(host, job)
    assert (end.kind, end.started) == ("exited", False) and "'CERT'" in end.error


async def test_an_attached_container_talks_to_its_client(host: PodmanHost, image: str):
    """stdin in, stdout and stderr apart, then the exit status; a terminal job gets one."""
    job = jid(host, "attached")
    attachment = await host.attach(job, AttachRequest())
    await host.start(spec(job, f"containers-storage:{image}", "sh", "-c",
                          "read x; echo got $x; echo err >&2; exit 4"))  # fmt: skip
    await attachment.started()
    await attachment.write(b"hello\n")
    out: dict[int, bytes] = {}
    async with asyncio.timeout(30):
        async for stream, data in attachment.output():
            out[stream] = out.get(stream, b"") + data
    assert out == {1: b"got hello\n", 2: b"err\n"}
    assert await attachment.exit_status() == 4
    await attachment.detach()
    tty = jid(host, "tty")
    terminal = await host.attach(tty, AttachRequest(tty=True, height=20, width=70))
    await host.start(spec(tty, f"containers-storage:{image}", "sh", "-c", "stty size"))
    seen = b""
    async with asyncio.timeout(30):
        async for _, data in terminal.output():
            seen += data
    assert seen == b"20 70\r\n" and await terminal.exit_status() == 0
    await terminal.detach()


async def test_a_new_host_adopts_running_containers_and_learns_how_the_others_ended(
    root: Path, logs: MemoryLogStore, host_id: str, image: str
):
    """Closing the host leaves its containers running; a new one on the same storage finds
    them: the running one comes up again, one that ended meanwhile reports its status."""
    first = new_host(root, logs, host_id)
    await first.recover()
    long, short = jid(first, "long"), jid(first, "short")
    await first.start(spec(long, f"containers-storage:{image}", "sleep", "60"))
    await first.start(spec(short, f"containers-storage:{image}", "sh", "-c", "sleep 1; exit 7"))
    for job in (long, short):
        assert (await next_event(first, job)).kind == "up"
    await first.close()
    await asyncio.sleep(2)
    assert containers(host_id) == {long: "running", short: "exited"}
    second = new_host(root, logs, host_id)
    try:
        assert sorted(await second.recover()) == sorted([long, short])
        assert (await ended(second, short)).exit_status == 7
        assert (await next_event(second, long)).kind == "up"
        await second.stop(long)
        assert (await next_event(second, long)).kind == "exited"
        for job in (long, short):
            await second.forget(job)
    finally:
        await second.close()
    assert containers(host_id) == {}
