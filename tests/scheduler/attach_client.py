"""A client of Flynn's attach protocol, written from its Go client (pkg/cluster/attach.go)."""

import asyncio
import struct
from typing import Any

import orjson

ERROR, DATA, SIGNAL, EXIT, RESIZE = 2, 3, 4, 5, 6


class Attached:
    """`POST /apps/:app/jobs` with `Upgrade: flynn-attach/0`, then frames both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    @classmethod
    async def open(
        cls, host: str, port: int, app: str, job: dict[str, Any], auth: str
    ) -> "Attached":
        reader, writer = await asyncio.open_connection(host, port)
        body = orjson.dumps(job)
        head = (
            f"POST /apps/{app}/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
            f"Upgrade: flynn-attach/0\r\nConnection: upgrade\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        self = cls(reader, writer)
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        if self.status != 101:
            length = int(self.headers.get("content-length", "0"))
            self.body = await reader.readexactly(length)
        return self

    def send(self, data: bytes) -> None:
        """Stdin data (a zero-length frame closes stdin)."""
        self.writer.write(struct.pack(">BBI", DATA, 0, len(data)) + data)

    def signal(self, number: int) -> None:
        self.writer.write(struct.pack(">BI", SIGNAL, number))

    def resize(self, height: int, width: int) -> None:
        self.writer.write(struct.pack(">BHH", RESIZE, height, width))

    async def frame(self) -> tuple[int, int, bytes]:
        """The next frame: (type, stream or exit status, data)."""
        kind = (await self.reader.readexactly(1))[0]
        if kind == DATA:
            stream, length = struct.unpack(">BI", await self.reader.readexactly(5))
            return kind, stream, await self.reader.readexactly(length)
        if kind == EXIT:
            return kind, struct.unpack(">I", await self.reader.readexactly(4))[0], b""
        if kind == ERROR:
            (length,) = struct.unpack(">I", await self.reader.readexactly(4))
            return kind, 0, await self.reader.readexactly(length)
        raise AssertionError(f"unknown frame type {kind}")

    async def receive(self, timeout: float = 30) -> tuple[dict[int, bytes], int | None, str]:
        """Everything until the last frame: output by stream, exit status, error."""
        out: dict[int, bytes] = {}
        async with asyncio.timeout(timeout):
            while True:
                kind, value, data = await self.frame()
                if kind == DATA:
                    out[value] = out.get(value, b"") + data
                elif kind == EXIT:
                    return out, value, ""
                else:
                    return out, None, data.decode()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
