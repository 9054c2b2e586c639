"""POST /keys with an expiry: a duration from now or an RFC 3339 time; anything else,
a duration past what a time can hold included, is a 400 naming the field."""

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from domain.keys import expiry
from domain.timefmt import parse_time


async def test_a_duration_or_a_time_sets_when_the_key_expires(client: TestClient):
    """`expires_in` counts from now; `expires_at` is taken as given."""
    response = await client.post("/keys", json={"name": "ci", "scope": "read", "expires_in": "2w"})
    assert response.status == 200, await response.text()
    left = parse_time((await response.json())["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=13) < left <= timedelta(days=14)
    at = "2031-01-02T03:04:05Z"
    response = await client.post("/keys", json={"name": "cd", "scope": "read", "expires_at": at})
    assert response.status == 200 and (await response.json())["expires_at"] == at


@pytest.mark.parametrize(
    ("field", "value"),
    [("expires_in", "549481w"), ("expires_in", "99999999999999999999d"), ("expires_at", "soon")],
)
async def test_an_expiry_no_time_can_hold_is_a_400(client: TestClient, field: str, value: str):
    """A duration past the year 9999 (or past what a duration holds) is refused, not a 500."""
    response = await client.post("/keys", json={"name": "far", "scope": "read", field: value})
    assert response.status == 400, await response.text()
    assert (await response.json())["detail"] == {"field": field}


def test_expiry_refuses_what_overflows():
    """The parser says ValueError, which the CLI and the API turn into their refusals."""
    with pytest.raises(ValueError, match="9999"):
        expiry("549481w", datetime.now(UTC))
