"""Connection limits, below HTTP: how many connections are open, from whom, and how long a
new one may take to say what it wants.

* At most `limit` connections are open in the process, and `per_client` from one client (an
  IPv4 address, or an IPv6 /64: what one machine usually has); one more is answered a 503
  with Retry-After at once, and closed. Each process of `serve --workers N` counts its own.
* A new connection must send its first request's head within `header_timeout`, or it is
  answered a 408 and closed. After a first request, aiohttp's keep-alive timeout (set to the
  same) bounds the wait for the next head: a connection trickling header bytes, or silent,
  is never held longer.

aiohttp neither counts connections nor, before 3.14, times the first head: a client sending
one header byte a second kept its connection, and its file descriptor, for as long as it
liked. Hence a protocol around aiohttp's, created per connection by `ConnectionGate`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import cast

from controller.errors import RETRY_AFTER, error_document
from controller.limits import FD_RESERVE, raise_fd_limit

logger = logging.getLogger(__name__)

#: A refused connection is logged at most this often (seconds): a flood must not flood the log.
WARN_EVERY = 60.0
_HEAD_END = b"\r\n\r\n"


def client_of(peername: object) -> str:
    """Whom a connection is counted against: its IPv4 address, or its IPv6 address's /64
    (an IPv4 address mapped into IPv6 counts as itself); "" when not an IP socket."""
    if not isinstance(peername, tuple) or not peername:
        return ""
    host = str(peername[0])
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def connection_limit(configured: int) -> int:
    """MAX_CONNECTIONS, or (0) what the file descriptors allow: RLIMIT_NOFILE, raised to its
    hard limit, less what the service needs besides connections (limits.FD_RESERVE)."""
    allowed = max(1, raise_fd_limit() - FD_RESERVE)
    if configured > allowed:
        logger.warning("MAX_CONNECTIONS=%d lowered to %d (RLIMIT_NOFILE)", configured, allowed)
    return min(configured, allowed) if configured else allowed


def _answer(status: str, code: str, message: str, *, retry: bool) -> bytes:
    """A whole HTTP response with an error document, sent before any request is read."""
    body = error_document(code, message, retry=retry)
    extra = b"Retry-After: %d\r\n" % RETRY_AFTER if retry else b""
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s"
        b"Connection: close\r\n\r\n%s" % (status.encode(), len(body), extra, body)
    )


class ConnectionGate:
    """The protocol factory to serve with: counts the open connections, in all and per
    client, and wraps the protocol `handler_factory` makes (aiohttp's) for each one let in."""

    def __init__(
        self,
        handler_factory: Callable[[], asyncio.Protocol],
        *,
        limit: int,
        per_client: int,
        header_timeout: float,
    ) -> None:
        self.handler_factory = handler_factory
        self.limit = limit
        self.per_client = per_client  # 0: no cap
        self.header_timeout = header_timeout
        self.open = 0
        self.by_client: dict[str, int] = {}
        self._refused = 0
        self._warned_at = -WARN_EVERY
        self.too_many = _answer(
            "503 Service Unavailable",
            "service_unavailable",
            f"too many open connections ({limit}, MAX_CONNECTIONS); retry later",
            retry=True,
        )
        self.too_many_from_client = _answer(
            "503 Service Unavailable",
            "service_unavailable",
            f"too many connections from your address ({per_client}, "
            "MAX_CONNECTIONS_PER_CLIENT); retry later",
            retry=True,
        )
        self.too_slow = _answer(
            "408 Request Timeout",
            "request_timeout",
            f"the request's head did not arrive within {header_timeout:g}s (HEADER_TIMEOUT)",
            retry=False,
        )

    def __call__(self) -> asyncio.Protocol:
        return GatedConnection(self)

    def admit(self, client: str) -> bytes | None:
        """Count a new connection from `client`; or the answer that refuses it."""
        if self.open >= self.limit:
            return self._refuse(self.too_many, "MAX_CONNECTIONS")
        held = self.by_client.get(client, 0)
        if self.per_client and held >= self.per_client:
            return self._refuse(self.too_many_from_client, "MAX_CONNECTIONS_PER_CLIENT")
        self.open += 1
        self.by_client[client] = held + 1
        return None

    def leave(self, client: str) -> None:
        self.open -= 1
        held = self.by_client[client] - 1
        if held:
            self.by_client[client] = held
        else:
            del self.by_client[client]

    def _refuse(self, answer: bytes, cap: str) -> bytes:
        self._refused += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            logger.warning("refused %d connection(s), the last over %s", self._refused, cap)
            self._refused, self._warned_at = 0, now
        return answer


class GatedConnection(asyncio.Protocol):
    """One connection: let in (then served by the wrapped protocol) or refused at once."""

    __slots__ = ("client", "deadline", "gate", "inner", "started", "tail")

    def __init__(self, gate: ConnectionGate) -> None:
        self.gate = gate
        self.inner: asyncio.Protocol | None = None
        self.client = ""
        self.deadline: asyncio.TimerHandle | None = None
        self.started = False  # a byte other than CR or LF arrived (the head began)
        self.tail = b""  # the last bytes of the head so far: its end may span two reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it.
        transport = cast(asyncio.Transport, transport)
        self.client = client_of(transport.get_extra_info("peername"))
        refusal = self.gate.admit(self.client)
        if refusal is not None:
            transport.write(refusal)
            transport.close()
            return
        self.inner = self.gate.handler_factory()
        loop = asyncio.get_running_loop()
        self.deadline = loop.call_later(self.gate.header_timeout, self._too_slow, transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.deadline is not None:
            self._watch_head(data)
        if self.inner is not None:
            self.inner.data_received(data)

    def _watch_head(self, data: bytes) -> None:
        if not self.started:
            data = data.lstrip(b"\r\n")  # empty lines may come first (RFC 9112 2.2)
            if not data:
                return
            self.started = True
        seen = self.tail + data
        if _HEAD_END in seen:
            assert self.deadline is not None
            self.deadline.cancel()
            self.deadline, self.tail = None, b""
        else:
            self.tail = seen[-3:]

    def _too_slow(self, transport: asyncio.Transport) -> None:
        self.deadline = None
        transport.write(self.gate.too_slow)
        transport.close()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if self.inner is None:
            return  # refused: never counted
        self.gate.leave(self.client)
        self.inner.connection_lost(exc)
