"""Bad input gets a clear 4xx with an error document, never a 5xx or a broken service: bodies
too large, of the wrong type, not UTF-8, nested too deep, repeating keys, holding NUL, with
enormous or fractional numbers; negative and enormous ids and counts in paths and queries."""

import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import JSONSyntaxError, ValidationError
from controller.app import create_app
from controller.limits import MAX_JSON_DEPTH, decode_body
from controller.urls import URLS
from eventstore.postgres import PostgresEventStore
from service.settings import Settings
from tests.reliability.service import AUTH, JSON, KEY

CONTENT_TYPE_ERROR = {
    "code": "validation_error",
    "message": "Content-Type must be application/json",
    "retry": False,
}


async def answer(response: Any) -> tuple[int, Any]:
    body = await response.read()
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    return response.status, orjson.loads(body) if is_json and body else body


async def release_id(api: TestClient) -> str:
    artifact = await (
        await api.post("/artifacts", json={"type": "docker", "uri": "https://x/i"})
    ).json()
    body = {"artifact": artifact["id"], "processes": {"web": {"cmd": ["serve"]}}}
    return str((await (await api.post("/releases", json=body)).json())["id"])


# -- size --------------------------------------------------------------------------------


async def test_a_body_over_the_default_10_mib_is_a_413_and_one_under_it_is_read(api: TestClient):
    """The default MAX_BODY_SIZE is 10 MiB: one byte more is a 413 document, less is parsed."""
    limit = Settings().max_body_size
    assert limit == 10 * 1024 * 1024
    # In meta values of 64 KiB, the most one may hold.
    values = b",".join(b'"k%d": "%b"' % (n, b"x" * 65536) for n in range(limit // 65600))
    just_under = b'{"name": "big", "meta": {' + values + b"}}"
    assert limit - 100_000 < len(just_under) < limit
    response = await api.post("/apps", data=io.BytesIO(just_under), headers=JSON)
    status, body = await answer(response)
    assert status == 200 and body["name"] == "big"
    over = b'{"name": "big2", "meta": {"k": "' + b"x" * limit + b'"}}'
    status, body = await answer(await api.post("/apps", data=io.BytesIO(over), headers=JSON))
    assert status == 413 and body["code"] == "request_body_too_big" and body["retry"] is False


# -- Content-Type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_body_without_a_json_content_type_is_a_400(
    api: TestClient, content_type: str | None
):
    """Flynn HEAD's rule: a body endpoint's Content-Type must contain application/json."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await api.post("/apps", data=b'{"name": "typed"}', headers=headers)
    assert await answer(response) == (400, CONTENT_TYPE_ERROR)
    assert (await api.get("/apps/typed")).status == 404


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
async def test_json_content_types_with_parameters_or_capitals_are_accepted(
    api: TestClient, content_type: str
):
    """application/json with a charset, or in capitals, is JSON."""
    response = await api.post(
        "/apps", data=b'{"name": "typed"}', headers={"Content-Type": content_type}
    )
    assert response.status == 200


async def existing_objects(api: TestClient) -> dict[str, str]:
    """Path parameters naming objects that exist, so that no lookup answers first."""
    await api.post("/apps", json={"name": "ct"})
    route = await (
        await api.post(
            "/apps/ct/routes", json={"type": "http", "domain": "ct.test", "service": "s"}
        )
    ).json()
    await api.post("/providers", json={"name": "ctp", "url": "http://127.0.0.1:9/never"})
    return {
        "app": "ct",
        "release": await release_id(api),
        "job": "host-0",
        "provider": "ctp",
        "resource": "6b5a7e0c-5d3e-4f7a-9f1e-3c2b1a0d9e8f",
        "type": "http",
        "id": route["id"],
    }


async def test_every_body_endpoint_checks_the_content_type(api: TestClient):
    """Each endpoint with a request body (see controller/urls.py) refuses a form body."""
    bodies = [(url.method, url.path) for url in URLS if url.body]
    assert len(bodies) >= 15
    objects = await existing_objects(api)
    for method, path in bodies:
        response = await api.request(
            method,
            path.format(**objects),
            data=b"{}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert await answer(response) == (400, CONTENT_TYPE_ERROR), (method, path)


# -- encoding and syntax -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"name": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"name": "\\ud800"}',  # a lone surrogate escape
        b"\xef\xbb\xbf{}",  # a byte-order mark
        b'{"name": NaN}',
        b'{"deploy_timeout": 1e999}',
    ],
)
async def test_bodies_that_are_not_valid_utf8_json_are_a_syntax_error(api: TestClient, raw: bytes):
    """Invalid UTF-8, surrogates, NaN and infinities are a 400 syntax_error."""
    status, body = await answer(await api.post("/apps", data=raw, headers=JSON))
    assert status == 400 and body["code"] == "syntax_error"


async def test_json_nested_deeper_than_the_limit_is_refused_and_at_the_limit_is_recorded(
    api: TestClient,
):
    """MAX_JSON_DEPTH levels are accepted and recorded; one more, or thousands, are a 400."""

    def release(depth: int) -> bytes:
        # The free-form `check` object is the 7th level of a release.
        check = '{"a":' * (depth - 6) + "1" + "}" * (depth - 6)
        port = '[{"service": {"check": ' + check + "}}]"
        return (
            '{"artifact": "' + artifact + '", "processes": {"web": {"ports": ' + port + "}}}"
        ).encode()

    artifact: str = (
        await (await api.post("/artifacts", json={"type": "docker", "uri": "https://x"})).json()
    )["id"]
    status, body = await answer(
        await api.post("/releases", data=release(MAX_JSON_DEPTH), headers=JSON)
    )
    assert status == 200, body
    for depth in (MAX_JSON_DEPTH + 1, 300, 5000):
        status, body = await answer(await api.post("/releases", data=release(depth), headers=JSON))
        assert status == 400 and body["code"] in ("validation_error", "syntax_error"), depth
    assert (await api.get("/.well-known/status")).status == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "a", "name": "b"}',
        b'{"name": "a", "na\\u006de": "b"}',  # the same key, escaped
        b'{"meta": {"k": "1", "k": "2"}}',
        b'{"processes": {"web": {"cmd": ["x"], "cmd": ["y"]}}}',
        b'[{"a": 1, "a": 1}]',
        b'{"x": "\\u003a", "k": 1, "k": 2}',  # an escaped colon balancing a dropped key
    ],
)
async def test_a_repeated_key_anywhere_is_a_400(api: TestClient, raw: bytes):
    """Which of two values would win is not a guess the service makes."""
    status, body = await answer(await api.post("/apps", data=raw, headers=JSON))
    assert status == 400 and body["code"] == "validation_error"
    assert "more than once" in body["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "colons", "meta": {"url": "https://a:1/b", "at": "2015-12-16T02:21:06Z"}}',
        b'{"name": "escapes", "meta": {"c": "\\u003a", "d": "a\\\\u003a"}}',
        b'{"name":"nested","meta":{"name":"x"}}',  # the same key in different objects
    ],
)
async def test_colons_in_strings_and_escaped_colons_are_no_repeated_key(
    api: TestClient, raw: bytes
):
    """The fast duplicate check counts colons: those inside strings do not mislead it."""
    status, body = await answer(await api.post("/apps", data=raw, headers=JSON))
    assert status == 200, body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet=':"\\ab\x01é'),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(st.tuples(st.text(alphabet=':"ab\\é', max_size=3), children), max_size=4).map(
            lambda pairs: ("object", pairs)
        )
    ),
    max_leaves=25,
)


def _text(value: Any) -> str:
    """JSON text for a value whose objects are lists of pairs (repeats allowed)."""
    if isinstance(value, tuple):
        return "{" + ",".join(json.dumps(k) + ":" + _text(v) for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=bool(hash(str(value)) % 2))


def _repeats(value: Any) -> bool:
    if isinstance(value, tuple):
        keys = [k for k, _ in value[1]]
        return len(set(keys)) < len(keys) or any(_repeats(v) for _, v in value[1])
    if isinstance(value, list):
        return any(_repeats(v) for v in value)
    return False


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_the_fast_repeated_key_check_agrees_with_a_full_parse(value: Any):
    """decode_body refuses a text exactly when one of its objects repeats a key."""
    raw = _text(value).encode()
    try:
        decode_body(raw)
    except ValidationError as error:
        assert _repeats(value) and "more than once" in error.message
    except JSONSyntaxError:
        raise AssertionError(f"valid JSON refused: {raw!r}") from None
    else:
        assert not _repeats(value), raw


@pytest.mark.parametrize(
    "raw",
    [b'{"name": "nul", "meta": {"k": "a\\u0000b"}}', b'{"name": "nul", "meta": {"\\u0000": "b"}}'],
)
async def test_a_nul_character_in_a_string_is_a_400(api: TestClient, raw: bytes):
    """PostgreSQL text cannot hold NUL: refused at the door, not in the SQL read model later."""
    status, body = await answer(await api.post("/apps", data=raw, headers=JSON))
    assert status == 400 and "NUL" in body["message"]
    raw = b'{"name": "text", "meta": {"k": "\\\\u0000"}}'  # the text \u0000 is fine
    assert (await api.post("/apps", data=raw, headers=JSON)).status == 200


# -- numbers, ids and counts -----------------------------------------------------------------


@pytest.mark.parametrize(
    "processes",
    [
        {"web": 10_001},
        {"web": 2**63},
        {"web": 99999999999999999999999},
        {"web": 1.0},
        {"web": 1e2},
        {"web": -1},
        {"web": True},
        {"web": "1"},
    ],
)
async def test_formation_counts_must_be_whole_numbers_from_0_to_10000(
    api: TestClient, processes: dict[str, Any]
):
    """Enormous, fractional-looking or negative counts are a 400 and scale nothing."""
    await api.post("/apps", json={"name": "counted"})
    release = await release_id(api)
    raw = b'{"processes": {"web": %s}}' % json.dumps(processes["web"]).encode()
    status, body = await answer(
        await api.put(f"/apps/counted/formations/{release}", data=raw, headers=JSON)
    )
    assert status == 400 and body["code"] == "validation_error"
    assert (await api.get(f"/apps/counted/formations/{release}")).status == 404
    status, _ = await answer(
        await api.put(f"/apps/counted/formations/{release}", json={"processes": {"web": 10_000}})
    )
    assert status == 200


@pytest.mark.parametrize(
    "body",
    [{"deploy_timeout": 2**31}, {"deploy_timeout": 1.5}, {"deploy_timeout": -1}],
)
async def test_deploy_timeouts_out_of_range_are_a_400(api: TestClient, body: dict[str, Any]):
    """A deploy timeout is a whole number of seconds that fits Flynn's int32."""
    status, answer_body = await answer(await api.post("/apps", json={"name": "t", **body}))
    assert status == 400 and answer_body["code"] == "validation_error"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/events/-1", 404),
        ("/events/0", 404),
        ("/events/99999999999999999999999", 404),
        ("/events?since_id=-1", 400),
        ("/events?before_id=-5", 400),
        ("/events?count=-1", 400),
        ("/events?count=99999999999999999999999", 400),
        ("/events?count=1e3", 400),
        ("/apps/x/log?lines=-1", 404),
        ("/releases/-1", 404),
        ("/deployments/99999999999999999999", 404),
        ("/apps/%00", 404),
    ],
)
async def test_negative_or_enormous_ids_and_counts_are_a_clear_4xx(
    api: TestClient, path: str, status: int
):
    """Not found is Flynn's bare 404; a malformed number is a 400 document."""
    got, body = await answer(await api.get(path, headers={"Accept": "application/json"}))
    assert got == status
    if status == 404:
        assert body == b""
    else:
        assert body["code"] == "validation_error"


@pytest.mark.parametrize("lines", ["-1", "10001", "99999999999999999999", "ten"])
async def test_log_lines_out_of_range_are_a_400(api: TestClient, lines: str):
    """?lines= is 0 to 10000."""
    await api.post("/apps", json={"name": "logged"})
    status, body = await answer(await api.get(f"/apps/logged/log?lines={lines}"))
    assert status == 400 and body["detail"] == {"field": "lines"}


@pytest.mark.postgres
async def test_a_nul_in_an_event_filter_is_a_400_not_a_database_error(
    aiohttp_client: Any, make_database: Callable[[], Awaitable[str]]
):
    """The filter would reach PostgreSQL, which refuses NUL in text: a 400 instead of a 500."""
    store = await PostgresEventStore.open(await make_database())
    try:
        client = await aiohttp_client(
            create_app(Settings(auth_keys=(KEY,)), store=store), headers=AUTH
        )
        for query in ("object_id=%00", "object_types=app,%00"):
            listed = await client.get(f"/events?{query}", headers={"Accept": "application/json"})
            streamed = await client.get(f"/events?{query}&past=true&count=5")
            for response in (listed, streamed):
                status, body = await answer(response)
                assert status == 400 and body["code"] == "validation_error"
    finally:
        await store.close()


async def test_garbage_bodies_leave_the_service_healthy(api: TestClient):
    """After a volley of bad bodies on every body endpoint the service is healthy."""
    garbage = [b"", b"null", b"[]", b'"x"', b"{" * 10, b"\x00\x01", b'{"a":' * 2000]
    for url in URLS:
        if not url.body:
            continue
        for raw in garbage:
            response = await api.request(
                url.method, url.path.replace("{", "").replace("}", ""), data=raw, headers=JSON
            )
            assert 400 <= response.status < 500, (url.method, url.path, raw[:20])
    status, body = await answer(await api.get("/.well-known/status"))
    assert status == 200 and body["data"]["status"] == "healthy"
