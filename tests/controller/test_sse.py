"""The formation and log streams as Flynn's Go clients read them (pkg/sse's Decoder, which
the scheduler's formation stream and `StreamAppLog` use): every message decodes, keep-alives
included. And why they are not written with aiohttp-sse: its pings end such a client."""

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp_sse import sse_response

from applog.store import LogLine
from controller import keys, sse
from domain.clock import now

STREAM = {"Accept": "text/event-stream"}
SENTINEL = {"updated_at": "0001-01-01T00:00:00Z"}


class FlynnStreamError(Exception):
    """What Flynn's client reports when a stream cannot be decoded or sent an error."""


def flynn_messages(raw: bytes) -> list[Any]:
    """Flynn's pkg/sse Reader.Read and Decoder.Decode (Go) over the bytes received so far:
    each message decoded as JSON, up to the first that is not (the client's stream then
    ends with that error). A message still incomplete at the end is left out."""
    messages: list[Any] = []
    at = 0
    while True:
        data, failed = b"", False
        while True:
            end = raw.find(b"\n", at)
            if end < 0:
                return messages
            line, at = raw[at : end + 1], end + 1
            failed = failed or line.startswith(b"event: error")
            if line.startswith(b"data: "):
                data += line.removeprefix(b"data: ").removesuffix(b"\n")
            if at == len(raw):
                return messages  # Go's Peek would wait for more
            if raw[at : at + 1] == b"\n":  # a blank line ends the message (and stays unread)
                break
        if failed:
            raise FlynnStreamError(data.decode())
        try:
            messages.append(json.loads(data))
        except ValueError as exc:
            raise FlynnStreamError(f"cannot decode {data!r}: {exc}") from None


async def read_until(response: Any, done: Any, timeout: float = 5) -> bytes:
    """The stream's bytes, read until `done(bytes)` holds."""
    raw = b""
    async with asyncio.timeout(timeout):
        while not done(raw):
            raw += await response.content.readany()
    return raw


@pytest.fixture
def quick_keepalives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.02)


async def test_a_formation_stream_decodes_for_flynns_scheduler_keepalives_included(
    client: TestClient,
    quick_keepalives: None,
):
    """Backlog, sentinel, keep-alives, then a change: Flynn's decoder reads every message."""
    await client.post("/apps", json={"name": "streamed"})
    artifact = await (
        await client.post("/artifacts", json={"type": "docker", "uri": "https://e/i"})
    ).json()
    release = await (
        await client.post(
            "/releases", json={"artifact": artifact["id"], "processes": {"web": {"cmd": ["w"]}}}
        )
    ).json()
    response = await client.get(
        "/formations", params={"since": "1970-01-01T00:00:00Z"}, headers=STREAM
    )
    raw = await read_until(response, lambda raw: raw.count(b":\n") >= 3)
    assert flynn_messages(raw) == [SENTINEL]
    scaled = await client.put(
        f"/apps/streamed/formations/{release['id']}", json={"processes": {"web": 2}}
    )
    assert scaled.status == 200
    raw += await read_until(response, lambda more: b'"web":2' in more and more.endswith(b"\n\n"))
    raw += await read_until(response, lambda more: more.count(b":\n") >= 2)  # and keep going
    sentinel, formation = flynn_messages(raw)
    assert sentinel == SENTINEL and formation["processes"] == {"web": 2}
    response.close()


async def test_a_followed_log_stream_decodes_for_flynns_client_up_to_its_eof(
    client: TestClient,
    quick_keepalives: None,
):
    """Lines with keep-alives between them, then the eof message: all of them decode."""
    app = await (await client.post("/apps", json={"name": "logged"})).json()
    logs = client.app[keys.LOG_STORE]
    logs.write(LogLine(app["id"], "first", now()))
    response = await client.get("/apps/logged/log", params={"lines": "1"}, headers=STREAM)
    raw = await read_until(response, lambda raw: raw.endswith(b'{"event":"eof"}\n\n'))
    assert [m["event"] for m in flynn_messages(raw)] == ["message", "eof"]
    response = await client.get(
        "/apps/logged/log", params={"follow": "true", "lines": "1"}, headers=STREAM
    )
    raw = await read_until(response, lambda raw: raw.count(b":\n") >= 3)
    logs.write(LogLine(app["id"], "second", now()))
    raw += await read_until(response, lambda more: b"second" in more and more.endswith(b"\n\n"))
    raw += await read_until(response, lambda more: more.count(b":\n") >= 2)
    assert [m["data"]["msg"] for m in flynn_messages(raw)] == ["first", "second"]
    response.close()


async def test_aiohttp_sse_pings_end_a_flynn_client_stream(aiohttp_client: Any):
    """aiohttp-sse sends `: ping` and a blank line on a fixed period, which Flynn's decoder
    reads as a message without data: its stream ends with an error. This is why the
    formation and log streams keep their own keep-alive (see docs/architecture.md)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        async with sse_response(request, sep="\n", ping_interval=0.02) as stream:
            await stream.send('{"n": 1}')
            await asyncio.sleep(60)
        return stream

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    response = await client.get("/")
    raw = await read_until(response, lambda raw: raw.count(b": ping") >= 2)
    with pytest.raises(FlynnStreamError, match="cannot decode b''"):
        flynn_messages(raw)
    response.close()
