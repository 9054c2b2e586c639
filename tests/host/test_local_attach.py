"""Attached jobs on the local host: pipes or a terminal between the job and its client."""

import asyncio
import signal
from pathlib import Path

from applog.store import MemoryLogStore
from host.interface import AttachError, Attachment, AttachRequest
from host.local import LocalHost
from tests.host.local_jobs import artifact, jid, lines, next_event, spec
from tests.host.machine import make_artifact


async def collect(attachment: Attachment) -> dict[int, bytes]:
    """Everything the job wrote, by stream, until both streams are closed."""
    out: dict[int, bytes] = {}
    async with asyncio.timeout(10):
        async for stream, data in attachment.output():
            out[stream] = out.get(stream, b"") + data
    return out


async def test_an_attached_job_sends_its_output_and_exit_status_to_the_client(
    host: LocalHost, root: Path, logs: MemoryLogStore
):
    """stdout and stderr come apart, the exit status after them, and the log stays empty."""
    attachment = await host.attach(jid("a"), AttachRequest())
    await host.start(spec(jid("a"), artifact(make_artifact(root)), "sh", "-c",
                          "echo out; echo err >&2; exit 3"))  # fmt: skip
    await attachment.started()
    assert await collect(attachment) == {1: b"out\n", 2: b"err\n"}
    assert await attachment.exit_status() == 3
    assert lines(logs, jid("a")) == []
    await attachment.detach()


async def test_what_the_client_writes_is_the_jobs_stdin_until_it_closes_it(
    host: LocalHost, root: Path, logs: MemoryLogStore
):
    """The job reads the client's bytes and sees the end of its input; with `log`, its output
    is in the app log too."""
    attachment = await host.attach(jid("cat"), AttachRequest(log=True))
    await host.start(spec(jid("cat"), artifact(make_artifact(root)), "sh", "-c",
                          "tr a-z A-Z; echo done"))  # fmt: skip
    await attachment.started()
    await attachment.write(b"hello\nworld\n")
    await attachment.close_stdin()
    assert await collect(attachment) == {1: b"HELLO\nWORLD\ndone\n"}
    assert await attachment.exit_status() == 0
    assert lines(logs, jid("cat")) == [("stdout", "HELLO"), ("stdout", "WORLD"),
                                       ("stdout", "done")]  # fmt: skip
    await attachment.detach()


async def test_a_tty_job_runs_on_a_terminal_of_the_requested_size(host: LocalHost, root: Path):
    """The job's stdin is a terminal of its own, sized as asked, that echoes and takes ^D as
    the end of input; a resize reaches it."""
    attachment = await host.attach(jid("t"), AttachRequest(tty=True, height=30, width=100))
    script = "test -t 0 && stty size; read line; echo got $line; stty size"
    await host.start(spec(jid("t"), artifact(make_artifact(root)), "sh", "-c", script))
    await attachment.started()
    seen = b""
    async with asyncio.timeout(10):
        async for stream, data in attachment.output():
            assert stream == 1
            seen += data
            if seen.endswith(b"30 100\r\n"):
                await attachment.resize(40, 120)
                await attachment.write(b"hi\n")
    assert seen == b"30 100\r\nhi\r\ngot hi\r\n40 120\r\n"
    assert await attachment.exit_status() == 0
    await attachment.detach()


async def test_a_signal_from_the_client_reaches_the_job(host: LocalHost, root: Path):
    """SIGINT ends a job that does not handle it: exit status 130, as a shell says."""
    attachment = await host.attach(jid("s"), AttachRequest())
    await host.start(spec(jid("s"), artifact(make_artifact(root)), "sh", "-c",
                          "echo ready; exec sleep 60"))  # fmt: skip
    await attachment.started()
    async for _, data in attachment.output():
        assert data == b"ready\n"
        await attachment.signal(signal.SIGINT)
    assert await attachment.exit_status() == 130
    await attachment.detach()


async def test_a_job_that_cannot_start_fails_its_client(host: LocalHost, root: Path):
    """An unknown command: the attachment says why, as the job's host error does."""
    attachment = await host.attach(jid("x"), AttachRequest())
    await host.start(spec(jid("x"), artifact(make_artifact(root)), "no-such-command"))
    event = await next_event(host, jid("x"))
    assert event.error == "no-such-command: command not found"
    try:
        await attachment.exit_status()
    except AttachError as exc:
        assert str(exc) == "no-such-command: command not found"
    else:
        raise AssertionError("no error")
    await attachment.detach()


async def test_a_client_that_leaves_stops_its_job(host: LocalHost, root: Path):
    """detach while the job runs: the host stops it."""
    attachment = await host.attach(jid("d"), AttachRequest())
    await host.start(spec(jid("d"), artifact(make_artifact(root)), "sleep", "60"))
    await attachment.started()
    assert (await next_event(host, jid("d"))).kind == "up"
    await attachment.detach()
    end = await next_event(host, jid("d"))
    assert (end.kind, end.exit_status) == ("exited", 143)
