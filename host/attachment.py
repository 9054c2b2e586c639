"""Attached jobs: the streams of a job whose stdin, stdout and stderr the service holds.

A client attaches before the job starts (`Host.attach`): the host finds the waiting
attachment in its `AttachRegistry` when it starts the job, runs the job on pipes (or on a
pseudo-terminal, for `tty`) and hands their other ends to the attachment with `bind`. The
attachment then reads the job's output into a bounded buffer (reading pauses while the client
is behind), writes what the client sends to the job's stdin, and learns the job's end from
the host (`ended`). Both hosts use it: the local one with the job's own pipes, the podman one
with those of the `podman start --attach` that runs the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import attrs

from applog.store import LogLine as AppLogLine
from applog.store import LogStore
from host.interface import AttachError, AttachRequest

#: Output read but not yet taken by the client, in bytes, beyond which reading pauses.
MAX_BUFFERED = 1024 * 1024
READ_SIZE = 64 * 1024
#: ^D: the end of input on a terminal in canonical mode (its "close" of stdin).
EOT = b"\x04"

#: Signals a client may send its job: those a job's supervisor (the local host's shim, a
#: container's init) outlives and passes on, and SIGKILL.
PASSED_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                            signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGWINCH,
                            signal.SIGKILL})  # fmt: skip

Signal = Callable[[int], Awaitable[None]]
Stop = Callable[[], Awaitable[None]]
LogLine = Callable[[str, str], None]  # (stream name, line)


def log_writer(logs: LogStore, template: AppLogLine) -> LogLine:
    """Writes an attached job's lines to the app log, as `template`'s job."""

    def write(stream: str, msg: str) -> None:
        logs.write(attrs.evolve(template, msg=msg, timestamp=datetime.now(UTC), stream=stream))

    return write


def set_window(fd: int, height: int, width: int) -> None:
    """Give the terminal of `fd` a size (nothing for a size of 0)."""
    if height > 0 and width > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def stdio_fds(request: AttachRequest) -> tuple[list[int], list[int]]:
    """The job's stdin, stdout and stderr, and the service's ends of them: three pipes, or
    one pseudo-terminal (its master twice: for reading, and a copy for writing)."""
    if request.tty:
        master, terminal = os.openpty()
        set_window(master, request.height, request.width)
        return [terminal, terminal, terminal], [os.dup(master), master]
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    return [stdin_r, stdout_w, stderr_w], [stdin_w, stdout_r, stderr_r]


class StdioAttachment:
    """One attached job, between the host (bind, ended) and the client (the rest)."""

    def __init__(self, job_id: str, request: AttachRequest, forget: Callable[[], None]) -> None:
        self.job_id = job_id
        self.request = request
        self._forget = forget  # removes it from the registry while it waits
        loop = asyncio.get_running_loop()
        self._started: asyncio.Future[None] = loop.create_future()
        self._exit: asyncio.Future[int] = loop.create_future()
        self._chunks: list[tuple[int, bytes]] = []
        self._buffered = 0
        self._readers: dict[int, int] = {}  # fd -> stream (1 stdout, 2 stderr)
        self._paused = False
        self._more = asyncio.Event()
        self._stdin: int | None = None
        self._terminal: int | None = None  # the pty's master, for resizing
        self._signal: Signal | None = None
        self._stop: Stop | None = None
        self._after_resize: Callable[[], None] | None = None
        self._log: LogLine | None = None
        self._partial: dict[int, bytes] = {}
        self._detached = False

    # -- the host's side ---------------------------------------------------------------

    def bind(
        self,
        kept: list[int],
        *,
        signal: Signal,
        stop: Stop,
        after_resize: Callable[[], None] | None = None,
        log: LogLine | None = None,
    ) -> None:
        """The job runs: `kept` (as `stdio_fds` gave them, owned from now on) are its
        streams' other ends: stdin, stdout, stderr; or, with a terminal, its master twice."""
        stdin, stdout, *rest = kept
        stderr = rest[0] if rest else None
        self._stdin, self._signal, self._stop = stdin, signal, stop
        self._after_resize, self._log = after_resize, log if self.request.log else None
        if stderr is None:
            self._terminal = stdout
        loop = asyncio.get_running_loop()
        os.set_blocking(stdin, False)
        for fd, stream in ((stdout, 1), (stderr, 2)):
            if fd is not None:
                os.set_blocking(fd, False)
                self._readers[fd] = stream
                loop.add_reader(fd, self._readable, fd)
        if not self._started.done():
            self._started.set_result(None)

    def ended(self, exit_status: int | None, error: str = "", started: bool = True) -> None:
        """The job ended (or never started, or its end is unknown: exit_status None)."""
        if not self._started.done():
            self._started.set_exception(AttachError(error or "the job did not start"))
        if self._exit.done():
            return
        if exit_status is not None and started and not error:
            self._exit.set_result(exit_status)
        else:
            self._exit.set_exception(
                AttachError(error or "the job ended without an exit status: it was killed")
            )

    # -- the client's side -------------------------------------------------------------

    async def started(self) -> None:
        await asyncio.shield(self._started)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        try:
            await self.started()
        except AttachError:
            return  # no output: the job did not run
        while True:
            while self._chunks:
                stream, data = self._chunks.pop(0)
                self._buffered -= len(data)
                self._resume_if_drained()
                yield stream, data
            if not self._readers:
                return
            self._more.clear()
            await self._more.wait()

    async def write(self, data: bytes) -> None:
        fd = self._stdin
        view = memoryview(data)
        while fd is not None and view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await self._writable(fd)
            except OSError:  # the job closed its stdin: what it does not read is dropped
                return
            fd = self._stdin

    async def close_stdin(self) -> None:
        if self._terminal is not None:
            await self.write(EOT)  # the terminal stays: the output comes through it
            return
        fd, self._stdin = self._stdin, None
        if fd is not None:
            os.close(fd)

    async def signal(self, signum: int) -> None:
        if self._signal is not None:
            await self._signal(signum)

    async def resize(self, height: int, width: int) -> None:
        if self._terminal is not None:
            with contextlib.suppress(OSError):
                set_window(self._terminal, height, width)
            if self._after_resize is not None:
                self._after_resize()

    async def exit_status(self) -> int:
        return await asyncio.shield(self._exit)

    async def detach(self, *, stop: bool = True) -> None:
        if self._detached:
            return
        self._detached = True
        self._forget()
        if stop and not self._exit.done() and self._stop is not None:
            await self._stop()
        self.close()

    def close(self) -> None:
        """Let go of the streams (the host does at its end, the client when it leaves)."""
        loop = asyncio.get_running_loop()
        for fd in list(self._readers):
            loop.remove_reader(fd)
            os.close(fd)
        self._readers.clear()
        self._more.set()
        stdin, self._stdin = self._stdin, None
        if stdin is not None:
            with contextlib.suppress(OSError):
                os.close(stdin)

    # -- reading -----------------------------------------------------------------------

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: a terminal whose every other end is closed
            data = b""
        stream = self._readers[fd]
        if data:
            self._chunks.append((stream, data))
            self._buffered += len(data)
            self._to_log(stream, data)
            if self._buffered > MAX_BUFFERED and not self._paused:
                self._paused = True
                for reader in self._readers:
                    asyncio.get_running_loop().remove_reader(reader)
        else:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            del self._readers[fd]
            self._to_log(stream, b"", final=True)
        self._more.set()

    def _resume_if_drained(self) -> None:
        if self._paused and self._buffered <= MAX_BUFFERED // 2:
            self._paused = False
            for reader in self._readers:
                asyncio.get_running_loop().add_reader(reader, self._readable, reader)

    def _to_log(self, stream: int, data: bytes, *, final: bool = False) -> None:
        if self._log is None:
            return
        lines = (self._partial.pop(stream, b"") + data).split(b"\n")
        rest = lines.pop()
        if final and rest:
            lines.append(rest)
        elif rest:
            self._partial[stream] = rest
        name = "stdout" if stream == 1 else "stderr"
        for line in lines:
            self._log(name, line.decode(errors="replace").removesuffix("\r"))

    async def _writable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_writer(fd, lambda: None if ready.done() else ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_writer(fd)


class AttachRegistry:
    """Attachments waiting for their jobs to start, by job id."""

    def __init__(self) -> None:
        self._waiting: dict[str, StdioAttachment] = {}

    def expect(self, job_id: str, request: AttachRequest) -> StdioAttachment:
        if job_id in self._waiting:
            raise AttachError(f"job {job_id} is attached already")
        attachment = StdioAttachment(job_id, request, lambda: self.drop(job_id))
        self._waiting[job_id] = attachment
        return attachment

    def claim(self, job_id: str) -> StdioAttachment | None:
        """The attachment waiting for `job_id`, now the host's to bind (None: none waits)."""
        return self._waiting.pop(job_id, None)

    def drop(self, job_id: str) -> None:
        self._waiting.pop(job_id, None)
