"""CORS: browsers' credentials go only to the origins CORS_ORIGINS lists, never to `null`;
by default any origin may call the API without them (Flynn allows every origin, with)."""

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from service.settings import Settings
from tests.reliability.service import AUTH, KEY

DASHBOARD = "https://dashboard.example.com"
STRANGER = "https://evil.example"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"
CREDENTIALS = "Access-Control-Allow-Credentials"


async def client_for(aiohttp_client: Any, **settings: Any) -> TestClient:
    app = create_app(Settings(auth_keys=(KEY,), **settings), store=InMemoryEventStore())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def cors_of(client: TestClient, origin: str) -> list[dict[str, str]]:
    """The CORS headers of a preflight, a GET and a stream's response to `origin`."""
    preflight = await client.options(
        "/apps", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 200
    listing = await client.get("/apps", headers=AUTH | {"Origin": origin})
    assert listing.status == 200
    stream = await client.get(
        f"/events?key={KEY}", headers={"Origin": origin, "Accept": "text/event-stream"}
    )
    assert stream.status == 200
    stream.close()
    return [
        {k: v for k, v in r.headers.items() if k.startswith("Access-Control-Allow-O")}
        | {k: v for k, v in r.headers.items() if k == CREDENTIALS}
        for r in (preflight, listing, stream)
    ]


@pytest.mark.parametrize("origin", [STRANGER, "null", DASHBOARD])
async def test_by_default_any_origin_may_call_without_credentials(aiohttp_client: Any, origin: str):
    """With no CORS_ORIGINS, every origin, `null` included, gets `*` and no credentials: a
    page must send the key itself (an Authorization header, or ?key= on a stream)."""
    client = await client_for(aiohttp_client)
    assert await cors_of(client, origin) == [{ALLOW_ORIGIN: "*"}] * 3


async def test_listed_origins_get_credentials_and_others_nothing(aiohttp_client: Any):
    """CORS_ORIGINS=<dashboard>: the dashboard gets itself back with credentials (preflight,
    answers and streams); any other origin, and `null`, gets no CORS headers at all."""
    client = await client_for(aiohttp_client, cors_origins=(DASHBOARD,))
    granted = {ALLOW_ORIGIN: DASHBOARD, CREDENTIALS: "true"}
    assert await cors_of(client, DASHBOARD) == [granted] * 3
    for origin in (STRANGER, "null", DASHBOARD + ".evil.example"):
        assert await cors_of(client, origin) == [{}] * 3
    response = await client.get("/apps", headers=AUTH | {"Origin": DASHBOARD})
    assert response.headers["Vary"] == "Origin"


async def test_listed_origins_and_a_star_keep_credentials_for_the_listed_only(aiohttp_client: Any):
    """CORS_ORIGINS=<dashboard>,*: the dashboard with credentials, every other origin without."""
    client = await client_for(aiohttp_client, cors_origins=(DASHBOARD, "*"))
    assert (await cors_of(client, DASHBOARD))[1] == {ALLOW_ORIGIN: DASHBOARD, CREDENTIALS: "true"}
    assert await cors_of(client, "null") == [{ALLOW_ORIGIN: "*"}] * 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("*",)),
        ("", ()),
        (
            "https://Dash.Example.com/, http://localhost:3000",
            ("https://dash.example.com", "http://localhost:3000"),
        ),
    ],
)
def test_cors_origins_are_read_as_browsers_send_them(value: str | None, expected: tuple[str]):
    """CORS_ORIGINS is a comma-separated list, compared as browsers send an Origin (lower
    case, no trailing slash); unset, it is `*`."""
    env = {} if value is None else {"CORS_ORIGINS": value}
    assert Settings.from_env(env).cors_origins == expected


@pytest.mark.parametrize("value", ["null", "https://ok.example,null", "dashboard.example"])
def test_null_or_a_malformed_cors_origin_refuses_to_start(value: str):
    """`null` (any sandboxed page can claim it) or something that is not an origin is a
    configuration error, not an origin silently granted credentials or ignored."""
    with pytest.raises(SystemExit, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": value})
