"""What requests put in the logs: the key never, in any form a client may send it (accepted
or not), and no request can start a line of the service log (control characters escaped,
continuation lines indented)."""

import asyncio
import io
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.access_log import REQUEST_LOG, BadRequestFilter, redact
from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from service.log_format import LogFormatter, escape
from service.settings import Settings
from tests.reliability.service import AUTH, JSON, KEY, OLD_KEY, Service

SECRET = "S3cr3t-Value-9xQ"  # as a key would be: no "key" in it
#: A line of the service log: its own record (a timestamp first) or a record's continuation.
RECORD_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: |  ")


def decoded(text: str) -> str:
    for _ in range(4):
        text = unquote_plus(text)
    return text.casefold()


def leaks(line: str, secret: str = SECRET) -> bool:
    """Whether `line` holds `secret`, as is or in any percent-encoding of it."""
    return secret in line or secret.casefold() in decoded(line)


# -- the key parameter, in every spelling ---------------------------------------------------


@st.composite
def encoded(draw: st.DrawFn, text: str) -> str:
    """`text` with some of its characters percent-encoded (any case), maybe twice."""
    out = []
    for char in text:
        how = draw(st.sampled_from(["as is", "as is", "%XX", "%xx", "%25XX"]))
        code = f"{ord(char):02X}"
        out.append(
            char
            if how == "as is"
            else {"%XX": "%" + code, "%xx": "%" + code.lower(), "%25XX": "%25" + code}[how]
        )
    return "".join(out)


@st.composite
def key_names(draw: st.DrawFn) -> str:
    """`key` as a client might spell it: any case, encoded, with brackets, NUL, spaces."""
    cased = "".join(draw(st.sampled_from([c, c.upper()])) for c in "key")
    prefix = draw(st.sampled_from(["", "%20", "+", "%00", "x_", "auth"]))
    suffix = draw(st.sampled_from(["", "[]", "[0]", "%5B%5D", "%00", "%20", ".", "%2E1"]))
    return prefix + draw(encoded(cased)) + suffix


other_names = st.text(alphabet="abcdxyz_", min_size=1, max_size=6)
other_values = st.text(alphabet="abcxyz0123456789-._~", max_size=8)


@st.composite
def targets_with_the_key(draw: st.DrawFn) -> str:
    """A request target whose query holds the key in one or more of the forms above, among
    other parameters, separated by & or ; (or nested, encoded, in another's value)."""
    params = [f"{n}={v}" for n, v in draw(st.lists(st.tuples(other_names, other_values)))]
    for _ in range(draw(st.integers(1, 3))):
        value = draw(encoded(SECRET))
        form = f"{draw(key_names())}={value}"
        if draw(st.booleans()):
            form = f"{draw(other_names)}={quote(form, safe='')}"
        params.insert(draw(st.integers(0, len(params))), form)
    separators = [draw(st.sampled_from("&;")) for _ in params]
    query = "".join(s + p for s, p in zip(separators, params, strict=True))[1:]
    path = draw(st.sampled_from(["/events", "/backup", "/apps", "/apps/x/log"]))
    return f"{path}?{query}"


@settings(max_examples=500, deadline=None)
@given(targets_with_the_key())
def test_no_spelling_of_the_key_parameter_survives_redaction(target: str):
    """Whatever the spelling of the key parameter (and the ones the server would not even
    read: `;key=`, `key%00=`, `key[]=`, `%6Bey=`, nested), its value is gone from the line."""
    assert not leaks(redact(target)), target


def test_redaction_keeps_the_rest_of_the_target():
    """Parameters that are not the key, and the path, are logged as sent."""
    assert redact("/events?key=s&x=1#f") == "/events?key=[REDACTED]&x=1#f"
    assert redact("/backup?%6Bey=s;past=true") == "/backup?%6Bey=[REDACTED];past=true"
    assert redact("/apps/keyboard?count=1&since_id=2") == "/apps/keyboard?count=1&since_id=2"


async def with_access_log(aiohttp_client: Any, app: Any) -> TestClient:
    """A client of `app`, served as `serve` does: its middleware writes the access log
    (aiohttp's own is off)."""
    server = TestServer(app)
    await server.start_server(access_log=None)
    return await aiohttp_client(server)  # type: ignore[no-any-return]


@pytest.fixture
async def logged(aiohttp_client: Any, caplog: pytest.LogCaptureFixture) -> TestClient:
    """The service in this process, with the access log (as `serve` runs it, minus the
    search for configured keys: what is tested is the redaction of parameters)."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    app = create_app(Settings(auth_keys=(KEY, SECRET)), store=InMemoryEventStore())
    app[REQUEST_LOG].secrets = ()
    return await with_access_log(aiohttp_client, app)


async def raw_get(client: TestClient, target: str, headers: str = "") -> bytes:
    """Send `GET target` as is; the status line of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        answer = await reader.read()
    finally:
        writer.close()
    return answer.partition(b"\r\n")[0]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=targets_with_the_key())
async def test_no_request_carrying_the_key_leaves_it_in_the_access_log(
    logged: TestClient,
    caplog: pytest.LogCaptureFixture,
    target: str,
):
    """Through HTTP: a request with the key in any generated spelling is logged (once), and
    its line holds neither the key nor any encoding of it."""
    caplog.clear()
    status = await raw_get(logged, target)  # a stream (key accepted) would never end
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1, (status, lines)
    assert not leaks(lines[0]), lines[0]


async def test_a_key_anywhere_in_a_target_is_kept_out_of_the_access_log(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
):
    """The access log of `serve` also hides a configured key wherever a client put it (the
    path, a parameter named otherwise), encoded or not."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    app = create_app(Settings(auth_keys=(KEY, SECRET)), store=InMemoryEventStore())
    client = await with_access_log(aiohttp_client, app)
    every_char_encoded = "".join(f"%{ord(c):02X}" for c in SECRET)
    for target in [f"/apps/{SECRET}", f"/apps?x={SECRET}", f"/apps/{every_char_encoded}"]:
        await raw_get(client, target)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3 and not any(leaks(line) for line in lines), lines


# -- no forged lines -------------------------------------------------------------------------


class BrokenStore(InMemoryEventStore):
    """A log whose reads of one event fail unexpectedly: the service answers a 500 and logs
    the request's path with the error."""

    async def get(self, event_id: int) -> Any:
        raise RuntimeError("the disk is on fire")


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """The service log as `serve` formats it (controller's loggers and aiohttp's), captured;
    only KEY is a configured key (SECRET shows what the formatter's search does not hide)."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(LogFormatter(secrets=(KEY,)))
    loggers = [logging.getLogger(name) for name in ("controller", "aiohttp")]
    bad_requests = BadRequestFilter()
    logging.getLogger("aiohttp.server").addFilter(bad_requests)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield output
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        logging.getLogger("aiohttp.server").removeFilter(bad_requests)


async def test_control_characters_of_a_request_cannot_start_a_log_line(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture, service_log: io.StringIO
):
    """A path with %0a, %0d and other controls, logged with a 500 (and its traceback), and
    malformed requests carrying the key: every line of the log is a record's own, starting
    with its timestamp, or an indented continuation; the key is not in it."""
    caplog.set_level(logging.INFO)
    app = create_app(Settings(auth_keys=(KEY,)), store=BrokenStore())
    client = await with_access_log(aiohttp_client, app)
    auth = f"Authorization: {AUTH['Authorization']}\r\n"
    # /events/{id} reads int(id), which allows whitespace around the number.
    assert (await raw_get(client, "/events/1%0a%0d%0b%0c", auth)).startswith(b"HTTP/1.1 500")
    for target in [f"/events?key={SECRET}\x01", f"/backup?key={SECRET} x", "/a\x85b"]:
        assert b" 400 " in await raw_get(client, target)
    log = service_log.getvalue()
    assert "unhandled error on GET /events/1\\n\\r\\x0b\\x0c" in log
    assert "bad request from 127.0.0.1: " in log and SECRET not in log
    for line in log.splitlines():
        assert RECORD_LINE.match(line), line
        assert line.isprintable(), line


def test_the_formatter_escapes_messages_and_indents_what_follows():
    """A record's message keeps to one line, with every control character escaped; what
    follows it (a traceback) is indented; a key in either is replaced."""
    formatter = LogFormatter(secrets=(SECRET, "short"))
    try:
        raise ValueError(f"bad\nline {SECRET}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "a\nb\x1bc %s", ("short",), None)
        import sys

        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    first, *rest = text.split("\n")
    assert first.endswith("a\\nb\\x1bc short")  # keys under 8 characters are not searched
    assert rest and all(line.startswith("  ") for line in rest)
    assert SECRET not in text and "[REDACTED]" in text
    assert escape("plain") == "plain" and escape("\u202e\x00") == "\\u202e\\x00"


# -- the service as it runs ------------------------------------------------------------------


@pytest.mark.postgres
async def test_the_running_service_log_has_no_forged_line_nor_key(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
):
    """With DEBUG logging, hostile targets (encoded line breaks and escapes, the key in odd
    places, malformed request lines with the key) leave a log whose every line starts with a
    timestamp or is an indented continuation, and that holds no key."""
    service = Service(await make_database(), workdir, {"LOG_LEVEL": "DEBUG"})
    try:
        await service.ready(session)
        for target in [
            "/apps/%0a2026-01-01%2000:00:00,000%20ERROR%20forged:%20x",
            f"/events?x=1;key={KEY}",
            f"/events?key%00={KEY}&key[]={OLD_KEY}",
            f"/backup?KEY={quote(KEY, safe='')}",
            f"/apps/{KEY}",
            f"/events?key={KEY}\x01",
        ]:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            await reader.read()
            writer.close()
        async with session.post(
            f"{service.url}/apps?key={KEY}", data=b"{", headers=AUTH | JSON
        ) as r:
            assert r.status == 400
    finally:
        service.stop()
    log = service.log()
    assert "forged" in log and "bad request from" in log
    for line in log.splitlines():
        assert RECORD_LINE.match(line), line
    assert KEY not in log and OLD_KEY not in log
