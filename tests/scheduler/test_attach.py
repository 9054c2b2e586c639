"""`flynn run` attached through the API, on the local host: Flynn's attach protocol, spoken
by a client written from Flynn's own (tests/scheduler/attach_client.py)."""

import asyncio
import signal
from pathlib import Path
from typing import Any

import attrs
import orjson
from aiohttp.test_utils import TestClient

from controller.keys import SCHEDULING
from eventstore.memory import InMemoryEventStore
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS
from tests.scheduler.attach_client import Attached
from tests.scheduler.service import WORKER, jobs, released_app, start, until


async def scheduling(client: TestClient) -> None:
    """Until the scheduler runs in the service: attached jobs need its host."""

    async def ready() -> bool:
        return client.app[SCHEDULING].scheduler is not None

    await until(ready)


async def run(client: TestClient, app: dict, **job: Any) -> Attached:
    server = client.server
    body = {"release": app["release"], **job}
    auth = AUTH_HEADERS["Authorization"]
    assert server.port is not None
    return await Attached.open(server.host, server.port, app["id"], body, auth)


async def served(aiohttp_client: Any, settings: Settings, root: Path) -> tuple[TestClient, dict]:
    client = await start(aiohttp_client, settings, InMemoryEventStore())
    app = await released_app(client, root, worker={"cmd": ["sh", "-c", WORKER]})
    await scheduling(client)
    return client, app


async def test_a_one_off_command_prints_its_output_and_exits_with_its_status(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """`flynn run echo hi`: 101, then hi on stdout, and exit status 0; a failing command's
    stdout and stderr apart, then its exit status; the jobs are recorded down and crashed."""
    client, app = await served(aiohttp_client, settings, root)
    hi = await run(client, app, args=["echo", "hi"], entrypoint=["echo"], cmd=["hi"],
                   release_env=True, disable_log=True)  # fmt: skip
    assert hi.status == 101
    assert (hi.headers["upgrade"], hi.headers["connection"]) == ("flynn-attach/0", "upgrade")
    assert await hi.receive() == ({1: b"hi\n"}, 0, "")
    await hi.close()
    three = await run(client, app, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert await three.receive() == ({1: b"out\n", 2: b"err\n"}, 3, "")
    await three.close()

    async def reported() -> bool:
        return sorted(j["state"] for j in await jobs(client, app)) == ["crashed", "down"]

    await until(reported)
    log = await (await client.get(f"/apps/{app['id']}/log")).text()
    assert "hi" not in log and '"msg":"out"' in log  # disable_log keeps the first one out


async def test_the_client_feeds_the_jobs_stdin_and_closes_it(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """Stdin frames reach the job; a zero-length one is the end of its input. A one-word
    command as Flynn's CLI sends it (`args`, and `entrypoint` without `cmd`) runs once."""
    client, app = await served(aiohttp_client, settings, root)
    upper = await run(client, app, cmd=["tr", "a-z", "A-Z"])
    upper.send(b"hello ")
    upper.send(b"world\n")
    upper.send(b"")
    assert await upper.receive() == ({1: b"HELLO WORLD\n"}, 0, "")
    await upper.close()
    cat = await run(client, app, args=["cat"], entrypoint=["cat"])
    cat.send(b"piped input\n")
    cat.send(b"")
    assert await cat.receive() == ({1: b"piped input\n"}, 0, "")
    await cat.close()


async def test_a_terminal_job_is_interactive_and_resizable(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """tty: the job runs on a terminal of the client's size; what the client types is echoed
    and read by the job, a resize reaches it, and a signal ends it."""
    client, app = await served(aiohttp_client, settings, root)
    script = "stty size; read x; echo got $x; stty size; echo ready; sleep 60"
    shell = await run(client, app, cmd=["sh", "-c", script], tty=True, tty_lines=24,
                      tty_columns=80, env={"TERM": "dumb"})  # fmt: skip
    seen = b""
    async with asyncio.timeout(30):
        while not seen.endswith(b"ready\r\n"):
            kind, stream, data = await shell.frame()
            assert (kind, stream) == (3, 1)
            seen += data
            if seen == b"24 80\r\n":
                shell.resize(50, 132)
                shell.send(b"yes\n")
    assert seen == b"24 80\r\nyes\r\ngot yes\r\n50 132\r\nready\r\n"
    shell.signal(signal.SIGTERM)
    assert await shell.receive() == ({}, 143, "")
    await shell.close()


async def test_a_client_that_leaves_stops_its_job(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """Closing the connection stops the job: it is reported down."""
    client, app = await served(aiohttp_client, settings, root)
    sleeper = await run(client, app, cmd=["sh", "-c", "echo started; exec sleep 60"])
    assert await sleeper.frame() == (3, 1, b"started\n")
    await sleeper.close()

    async def down() -> bool:
        return [j["state"] for j in await jobs(client, app)] == ["down"]

    await until(down)


async def test_a_job_that_cannot_run_ends_with_an_error_frame(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """An unknown command: an error frame with the job's host error, no exit status."""
    client, app = await served(aiohttp_client, settings, root)
    missing = await run(client, app, cmd=["no-such-command"])
    assert missing.status == 101
    assert await missing.receive() == ({}, None, "no-such-command: command not found")
    await missing.close()


async def test_refusals_come_before_the_switch_as_flynn_errors(
    root: Path, aiohttp_client: Any, settings: Settings
):
    """An unknown release is a bare 404, a bad body a 400, and a controller that does not
    schedule answers 503: nothing is recorded and no connection is switched."""
    client, app = await served(aiohttp_client, settings, root)
    unknown = await run(client, app, release="00000000-0000-4000-8000-000000000000")
    assert (unknown.status, unknown.body) == (404, b"")
    bad = await run(client, app, cmd="echo")
    assert bad.status == 400 and orjson.loads(bad.body)["code"] == "validation_error"
    off = await start(aiohttp_client, attrs.evolve(settings, scheduler="off"),
                      InMemoryEventStore())  # fmt: skip
    other = await released_app(off, root / "off", worker={"cmd": ["true"]})
    refused = await run(off, other, cmd=["true"])
    assert refused.status == 503
    assert orjson.loads(refused.body)["code"] == "service_unavailable"
    assert await jobs(client, app) == [] and await jobs(off, other) == []
    for conn in (unknown, bad, refused):
        await conn.close()
