"""Serving the application: aiohttp's runner behind a listening socket of our own, whose
connections pass the ConnectionGate (controller/connections.py); SIGTERM or SIGINT stop it
gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
from collections.abc import Callable

import attrs
import uvloop
from aiohttp import web

from controller.connections import ConnectionGate, connection_limit
from service.settings import Settings

logger = logging.getLogger("evenflow")

#: Seconds in-flight requests get to finish after SIGTERM/SIGINT (streams are closed at once).
#: aiohttp then cancels the ones left and waits as long again, so a request that never ends
#: holds the exit for twice this, plus the clean-up: under 10 s.
SHUTDOWN_TIMEOUT = 3.5
#: Connections the kernel queues before the service accepts them (aiohttp's default).
BACKLOG = 128


@attrs.define
class Served:
    """The application, listening."""

    runner: web.AppRunner
    listener: asyncio.Server
    gate: ConnectionGate

    @property
    def port(self) -> int:
        return int(self.listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, let the requests under way finish (SHUTDOWN_TIMEOUT), clean up."""
        self.listener.close()
        await self.runner.cleanup()


async def start(
    app: web.Application,
    settings: Settings,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> Served:
    """Start the application (its cleanup contexts) and listen on host:port."""
    runner = web.AppRunner(
        app,
        access_log=None,  # the middleware counts and logs each request (RequestLog)
        # Between requests, the wait for the next head: the same bound as for the first.
        keepalive_timeout=settings.header_timeout,
        # A body left unread (a 401, a 413) is read and dropped at most this long.
        lingering_time=settings.header_timeout,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        assert runner.server is not None
        gate = ConnectionGate(
            runner.server,
            limit=connection_limit(settings.max_connections),
            per_client=settings.max_connections_per_client,
            header_timeout=settings.header_timeout,
        )
        listener = await asyncio.get_running_loop().create_server(
            gate,
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=settings.header_timeout if ssl_context else None,
            backlog=BACKLOG,
            reuse_port=reuse_port or None,
        )
    except BaseException:
        await runner.cleanup()
        raise
    return Served(runner, listener, gate)


async def serve(
    app: web.Application,
    settings: Settings,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; `listening(port)` once the port accepts connections."""
    served = await start(app, settings, host, port, ssl_context=ssl_context, reuse_port=reuse_port)
    scheme = "https" if ssl_context else "http"
    if listening is not None:
        listening(served.port)
    logger.debug(
        "serving on %s://%s:%d (at most %d connections, %s per client)",
        scheme,
        host,
        served.port,
        served.gate.limit,
        served.gate.per_client or "any number",
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
        logger.info("stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        began = time.monotonic()
        await served.stop()
        logger.info("stopped in %.1f s", time.monotonic() - began)


def run(
    app: web.Application,
    settings: Settings,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    listening: Callable[[int], None] | None = None,
) -> None:
    """`serve` on an event loop of its own (uvloop: less CPU per request, see
    bench/README.md), until it stops."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(
            serve(
                app,
                settings,
                host,
                port,
                ssl_context=ssl_context,
                reuse_port=reuse_port,
                listening=listening,
            )
        )
