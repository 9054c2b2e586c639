"""The access log as `serve` writes it: one line per request, in text or JSON, gathered
and written in batches, in order with the service's other records."""

import asyncio
import io
import logging
import re

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.access_log import REQUEST_LOG
from controller.app import create_app
from domain.keys import bootstrap_name
from eventstore.memory import InMemoryEventStore
from service.log_output import LogOutput
from service.metrics.requests import RequestStats
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS
from tests.controller.conftest import AUTH_KEY as KEY

TEXT_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO aiohttp\.access: 127\.0\.0\.1 "GET (\S+)" '
    r"(\d{3}) \d+ \d+\.\d{3}ms request_id=(\S+)$"
)


async def served(aiohttp_client, output: LogOutput, stats: RequestStats) -> TestClient:
    """The service writing its access lines to `output` and counting into `stats`, served
    as `serve` does (aiohttp's own access log off)."""
    app = create_app(Settings(auth_keys=(KEY,)), store=InMemoryEventStore())
    app[REQUEST_LOG].output, app[REQUEST_LOG].stats = output, stats
    server = TestServer(app)
    await server.start_server(access_log=None)
    return await aiohttp_client(server)  # type: ignore[no-any-return]


@pytest.fixture
def access_level():
    """The access log at INFO, as `serve` sets it."""
    logger = logging.getLogger("aiohttp.access")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


async def test_json_lines_parse_and_carry_the_request_id(aiohttp_client, access_level):
    """LOG_FORMAT=json: each request's line is one JSON object with its time, level,
    logger, message, request id, actor, route template, status and duration in µs."""
    stream, stats = io.StringIO(), RequestStats()
    output = LogOutput(stream, json=True)
    client = await served(aiohttp_client, output, stats)
    made = await client.post("/apps", json={"name": "logged"}, headers=AUTH_HEADERS)
    assert made.status == 200
    headers = AUTH_HEADERS | {"X-Request-Id": "abc-123"}
    assert (await client.get("/apps/logged", headers=headers)).status == 200
    accept = {"Accept": "application/json"}
    listing = await client.get(f"/events?key={KEY}", headers=AUTH_HEADERS | accept)
    assert listing.status == 200
    await listing.read()
    await asyncio.sleep(0.01)  # the line is logged once the answer is sent
    assert stream.getvalue() == ""  # gathered, not yet written
    output.flush()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["route"] for line in lines] == ["/apps", "/apps/{app}", "/events"]
    read = lines[1]
    assert read["request_id"] == "abc-123" and read["path"] == "/apps/logged"
    assert read["actor"] == bootstrap_name(KEY)  # the key's name, never the key
    assert read["message"] == "GET /apps/logged 200"
    assert (read["level"], read["logger"], read["status"]) == ("INFO", "aiohttp.access", 200)
    assert isinstance(read["duration_us"], int) and read["duration_us"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", read["time"])
    assert KEY not in stream.getvalue() and "[REDACTED]" in lines[2]["path"]
    assert sum(entry[0] for entry in stats.entries.values()) == 3


async def test_text_lines_keep_the_old_shape_with_microseconds(aiohttp_client, access_level):
    """The text format: the service log's timestamp, `remote "METHOD target" status bytes
    duration`, the duration to the microsecond, then the request id (the client's, or one
    made)."""
    stream = io.StringIO()
    output = LogOutput(stream)
    client = await served(aiohttp_client, output, RequestStats())
    await client.get("/ping")
    await client.get("/ping", headers={"X-Request-Id": "r-1"})
    output.flush()
    lines = stream.getvalue().splitlines()
    matched = [TEXT_LINE.match(line) for line in lines]
    assert all(matched), lines
    ids = [m.group(3) for m in matched if m]
    assert len(ids) == 2 and ids[0] != "r-1" and ids[1] == "r-1"


async def test_a_record_writes_the_access_lines_before_it(aiohttp_client, access_level):
    """A record (a warning) is written at once, after the access lines gathered before it:
    the log keeps the order of what happened."""
    stream = io.StringIO()
    output = LogOutput(stream)
    client = await served(aiohttp_client, output, RequestStats())
    await client.get("/ping")
    record = logging.LogRecord("evenflow", logging.WARNING, "f", 1, "after the ping", (), None)
    output.handle(record)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and '"GET /ping"' in lines[0] and "after the ping" in lines[1]


async def test_below_info_requests_are_counted_but_not_logged(aiohttp_client):
    """With LOG_LEVEL=WARNING the access log is silent; the metrics still count."""
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        stream, stats = io.StringIO(), RequestStats()
        output = LogOutput(stream)
        client = await served(aiohttp_client, output, stats)
        await client.get("/ping")
        output.flush()
    finally:
        logging.getLogger("aiohttp.access").setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
    assert list(stats.entries) == [("/ping", "GET", 200)]
