"""Ports for local jobs: free ones to hand out, and whether a job's port accepts connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable

#: How long one connection attempt may take (a refused one returns at once).
CONNECT_TIMEOUT = 1.0


def free_ports(count: int, taken: Iterable[int]) -> list[int]:
    """`count` ports nothing listens on now, none of them in `taken`."""
    busy = set(taken)
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("", 0))
            port = int(s.getsockname()[1])
        if port not in busy:
            busy.add(port)
            ports.append(port)
    return ports


async def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on `port` of this machine (IPv4 or IPv6)."""
    for address in ("127.0.0.1", "::1"):
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, writer = await asyncio.open_connection(address, port)
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False
