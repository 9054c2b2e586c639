"""A real resource provider for the tests: an aiohttp server on 127.0.0.1 (random port) that
provisions numbered databases, records every request, and fails or stalls on demand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer


@attrs.frozen
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@attrs.define
class ProviderServer:
    """Flynn's provider protocol: POST <url> {config} -> {"id", "env"}; DELETE <url>?id=."""

    calls: list[Call] = attrs.field(factory=list)
    fail_provision: bool = False  # POST answers 500
    failing_ids: set[str] = attrs.field(factory=set)  # DELETE of these external ids answers 500
    stall: bool = False  # POST waits until the server is closed
    answer_chunks: list[bytes] | None = None  # POST streams these instead of a resource
    provisioned: int = 0
    _server: TestServer | None = None
    _closing: asyncio.Event = attrs.field(factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/databases"))

    def deletes(self) -> list[str]:
        """The external ids asked to be deprovisioned, in order."""
        return [c.query.get("id", "") for c in self.calls if c.method == "DELETE"]

    async def _provision(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(Call("POST", request.path, dict(request.query), await request.json()))
        if self.stall:
            await self._closing.wait()
        if self.fail_provision:
            return web.Response(status=500, text="out of capacity")
        if self.answer_chunks is not None:
            return await self._stream(request, self.answer_chunks)
        self.provisioned += 1
        n = self.provisioned
        env = {"DATABASE_URL": f"postgres://user{n}@db/db{n}", "PGDATABASE": f"db{n}"}
        return web.json_response({"id": f"/databases/db{n}", "env": env})

    async def _stream(self, request: web.Request, chunks: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
            await asyncio.sleep(0.05)  # separate packets: the client sees partial bodies
        await response.write_eof()
        return response

    async def _deprovision(self, request: web.Request) -> web.Response:
        self.calls.append(Call("DELETE", request.path, dict(request.query), None))
        if request.query.get("id") in self.failing_ids:
            return web.Response(status=500, text="cannot drop it now")
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/databases", self._provision)
        app.router.add_delete("/databases", self._deprovision)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            await self._server.close()


@contextlib.asynccontextmanager
async def running_provider() -> AsyncIterator[ProviderServer]:
    server = ProviderServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
