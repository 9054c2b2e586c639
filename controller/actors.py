"""A request's id (`X-Request-Id`) and its actor: who made the request, from where, with what.

The id is the client's `X-Request-Id` when it is printable ASCII of at most 128 characters,
else one made here (a prefix random per process, and a counter); every answer carries it.
The actor (domain.actors) is made when a write, or a log line, first needs it: a read has
no use for the client's address. The address honours `X-Forwarded-For` only from the
networks of TRUSTED_PROXIES (the hops are read from the right, the first untrusted one is
the client's); without them it is the connection's peer.
"""

from __future__ import annotations

import ipaddress
import itertools
import secrets

from aiohttp import web

from controller import keys
from domain.actors import MAX_USER_AGENT, Actor
from service.settings import Network

REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID = 128

_PREFIX = secrets.token_hex(6) + "-"
_COUNTER = itertools.count(1)


def request_id(request: web.Request) -> str:
    """The client's X-Request-Id if it is fit to keep and show, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given and len(given) <= MAX_REQUEST_ID and given.isascii() and given.isprintable():
        return given
    return f"{_PREFIX}{next(_COUNTER):x}"


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str | None:
    """The client's address: the peer's, or, from a trusted proxy, the last address of
    X-Forwarded-For that is not a trusted proxy's."""
    peer = request.remote
    if not trusted or peer is None or not _trusted(peer, trusted):
        return peer
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ()))
    for hop in reversed(forwarded.split(",")):
        try:
            address = ipaddress.ip_address(hop.strip())
        except ValueError:
            break  # not an address: what lies beyond it cannot be trusted either
        peer = str(address)
        if not any(address in network for network in trusted):
            break
    return peer


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def actor(request: web.Request, component: str | None = None) -> Actor:
    """The request's actor (made once per request), or, with `component`, the actor of a
    consequence that component decides within the request."""
    made = request.get(keys.ACTOR)
    if made is None:
        principal = request.get(keys.PRINCIPAL)
        made = request[keys.ACTOR] = Actor(
            key=None if principal is None else principal.name,
            request_id=request.get(keys.REQUEST_ID),
            address=client_address(request, request.app[keys.SETTINGS].trusted_proxies),
            user_agent=_user_agent(request),
        )
    return made if component is None else made.cascaded(component)


def _user_agent(request: web.Request) -> str | None:
    """The User-Agent, shortened, without what a terminal would take as a command."""
    given = request.headers.get("User-Agent", "")[:MAX_USER_AGENT]
    if given.isprintable():  # the usual case: no copy
        return given or None
    return "".join(c for c in given if c.isprintable()) or None
