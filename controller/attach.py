"""`flynn run` attached: POST /apps/:app/jobs with `Upgrade: flynn-attach/0`.

Flynn's attach protocol (host/attach.go, pkg/cluster/attach.go): the one-off job is recorded,
the answer is `101 Switching Protocols`, and the connection then carries frames both ways:

    client -> service   DATA  (3) 0x00 <uint32 n> <n bytes of stdin>   (n = 0: stdin closed)
                        SIGNAL(4) <uint32 signal>
                        RESIZE(6) <uint16 height> <uint16 width>
    service -> client   DATA  (3) <1 stdout | 2 stderr> <uint32 n> <n bytes>
                        EXIT  (5) <uint32 exit status>                  (last)
                        ERROR (2) <uint32 n> <n bytes of message>       (last)

Integers are big-endian. Flynn's controller reads the host's first byte (attached) itself
before it answers 101, so the client sees frames only. The job is attached on the host of the
scheduler in this process (Host.attach, before the job is recorded, as Flynn attaches before
AddJob); a controller that does not schedule answers 503. A client that leaves stops its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any, cast

from aiohttp import web

from commands.errors import DomainError, UnavailableError, ValidationError
from commands.jobs import KillJob, RunJob
from controller import keys
from controller.actors import actor
from controller.handlers.common import dispatch
from domain.clock import now
from domain.states import ENDED_JOB_STATES
from host.interface import AttachError, Attachment, AttachRequest
from projections import jobs
from projections.memory import MemoryReadModel

UPGRADE = "flynn-attach/0"
# Flynn: host/types/types.go AttachSuccess, AttachWaiting, AttachError, AttachData, ...
ERROR, DATA, SIGNAL, EXIT, RESIZE = 2, 3, 4, 5, 6
#: The largest stdin frame taken (Flynn's CLI sends what one read of its stdin gives).
MAX_FRAME = 1024 * 1024
#: Input buffered from the client, in bytes, beyond which reading the connection pauses.
MAX_BUFFERED = 4 * MAX_FRAME
#: Once the job has ended, how long its last output may take to arrive.
DRAIN_TIMEOUT = 5.0


def wants_attach(request: web.Request) -> bool:
    return UPGRADE in request.headers.get("Upgrade", "")


async def run_attached(
    request: web.Request, command: RunJob, doc: dict[str, Any]
) -> web.StreamResponse:
    """Record the one-off job with its streams attached here, then speak frames."""
    scheduling = request.app.get(keys.SCHEDULING)
    scheduler = scheduling.scheduler if scheduling is not None else None
    if scheduler is None:
        raise UnavailableError(
            "attached jobs run on the scheduler's host, and this controller does not schedule "
            "(SCHEDULER=off, or another controller leads)"
        )
    wanted = AttachRequest(
        tty=bool(doc.get("tty")),
        height=doc.get("tty_lines") or 0,
        width=doc.get("tty_columns") or 0,
        log=not doc.get("disable_log"),
    )
    try:
        attachment = await scheduler.host.attach(command.job_id, wanted)
    except (ValueError, AttachError) as exc:
        raise ValidationError("id", str(exc)) from None
    try:
        await dispatch(request, command)
    except BaseException:
        await attachment.detach()
        raise
    frames = FrameReader(request)
    # Before the 101: every byte after it is the client's frames, not another request.
    request.protocol.set_parser(cast(Any, frames))
    response = web.StreamResponse(status=101, headers={"Connection": "upgrade", "Upgrade": UPGRADE})
    response.force_close()
    session = Session(request, response, attachment, frames, command)
    await session.run()
    return response


class FrameReader:
    """The client's bytes, fed by aiohttp's protocol (`set_parser`), read as frames."""

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._buffer = bytearray()
        self._eof = False
        self._more = asyncio.Event()
        self._paused = False

    # aiohttp's side (web_protocol.RequestHandler.data_received / connection_lost)
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFERED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._more.set()
        return False, b""

    def feed_eof(self) -> None:
        self._eof = True
        self._more.set()

    async def read(self, n: int) -> bytes | None:
        """Exactly `n` bytes, or None at the end of the connection."""
        while len(self._buffer) < n:
            if self._eof:
                return None
            self._more.clear()
            await self._more.wait()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        if self._paused and len(self._buffer) < MAX_BUFFERED // 2 and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        return data

    async def closed(self) -> None:
        """Until the client's side ends (it sends nothing else before the job runs)."""
        while not self._eof:
            self._more.clear()
            await self._more.wait()


class ProtocolError(Exception):
    """The client sent something that is not a frame of the attach protocol."""


class Session:
    """One attached connection, from the 101 to the last frame."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        attachment: Attachment,
        frames: FrameReader,
        command: RunJob,
    ) -> None:
        self.request = request
        self.response = response
        self.attachment = attachment
        self.frames = frames
        self.command = command

    async def run(self) -> None:
        ended = False  # the client was told how the job ended
        try:
            await self.response.prepare(self.request)
            error = await self._wait_started()
            if error is None:
                ended = await self._attached()
            elif error:
                await self._send(struct.pack(">BI", ERROR, len(error.encode())) + error.encode())
                ended = True
        except (ConnectionError, ProtocolError):
            pass
        finally:
            # A job whose client left (aiohttp cancels the handler when the connection
            # drops) is killed through the log, as `DELETE .../jobs/:job` would (reported
            # down); if the log is away, the host stops it all the same.
            recorded = ended or await self._kill()
            await self.attachment.detach(stop=not recorded)

    async def _wait_started(self) -> str | None:
        """None once the job runs; else why it never will ("" when the client left)."""
        model = self.request.app[keys.READ_MODEL]
        waits = {
            asyncio.ensure_future(self.attachment.started()): "started",
            asyncio.ensure_future(_final(model, self.command.job_id)): "final",
            asyncio.ensure_future(self.frames.closed()): "left",
        }
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        outcome = {waits[task]: task for task in done}
        started = outcome.get("started")
        if started is not None:
            if started.exception() is None:
                return None
            return str(started.exception())
        if "left" in outcome:
            return ""
        job = model.state.jobs[self.command.job_id]
        return job.host_error or f"the job is {job.state}: it did not start"

    async def _attached(self) -> bool:
        """Relay until the job's end was sent (True) or the client left (False)."""
        reading = asyncio.create_task(self._input())
        writing = asyncio.create_task(self._output())
        tasks = {reading, writing}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if writing in done:
            writing.result()  # a connection error: the client left
            return True
        reading.result()  # ended: the client left; or it broke the protocol
        return False

    async def _output(self) -> None:
        async def drain() -> None:
            async for stream, data in self.attachment.output():
                for at in range(0, len(data), MAX_FRAME):
                    piece = data[at : at + MAX_FRAME]
                    await self._send(struct.pack(">BBI", DATA, stream, len(piece)) + piece)

        draining = asyncio.create_task(drain())
        try:
            try:
                status = await self.attachment.exit_status()
            except AttachError as exc:
                message = str(exc).encode()
                await self._finish(draining)
                await self._send(struct.pack(">BI", ERROR, len(message)) + message)
                return
            await self._finish(draining)
            await self._send(struct.pack(">BI", EXIT, status & 0xFFFFFFFF))
        finally:
            draining.cancel()

    async def _finish(self, draining: asyncio.Task[None]) -> None:
        """Let the last output through (a process the job left behind may hold it open)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT):
                await asyncio.shield(draining)

    async def _input(self) -> None:
        read = self.frames.read
        while (kind := await read(1)) is not None:
            if kind[0] == DATA:
                header = await read(5)
                if header is None:
                    break
                stream, length = struct.unpack(">BI", header)
                if stream != 0 or length > MAX_FRAME:
                    raise ProtocolError(f"stdin frame of stream {stream}, {length} bytes")
                if length == 0:
                    await self.attachment.close_stdin()
                    continue
                data = await read(length)
                if data is None:
                    break
                await self.attachment.write(data)
            elif kind[0] == SIGNAL:
                number = await read(4)
                if number is None:
                    break
                await self.attachment.signal(struct.unpack(">I", number)[0])
            elif kind[0] == RESIZE:
                size = await read(4)
                if size is None:
                    break
                await self.attachment.resize(*struct.unpack(">HH", size))
            else:
                raise ProtocolError(f"unknown frame type {kind[0]}")

    async def _send(self, frame: bytes) -> None:
        await self.response.write(frame)

    async def _kill(self) -> bool:
        """The client left: its job is not wanted any more. False if the log is away."""
        command = KillJob(self.command.app, self.command.job_id, now())
        try:
            await self.request.app[keys.DISPATCHER].handle(
                command, actor=actor(self.request, "attach")
            )
        except DomainError:
            return False
        return True


async def _final(model: MemoryReadModel, job_id: str) -> None:
    while (ran := jobs.job(model.state, job_id)) is None or ran.state not in ENDED_JOB_STATES:
        await model.changed()
