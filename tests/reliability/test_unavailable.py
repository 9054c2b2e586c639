"""When the service cannot serve: /.well-known/status answers within 2 s even when the log's
database does not answer at all, with the reason; every 503 says why and when to retry
(Retry-After)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient

from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from eventstore.store import StoreUnavailableError
from service.settings import Settings
from tests.reliability.service import AUTH, JSON, KEY

#: The status's documented bound.
STATUS_WITHIN = 2.0


class StuckStore(InMemoryEventStore):
    """A log whose database stops answering once `stuck` is set, as a stopped (SIGSTOP)
    PostgreSQL does: a question never gets its answer, and withdrawing it takes seconds too
    (asyncpg asks the server to cancel the query, and waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = False
        self.asked = 0
        self.answering = asyncio.Event()  # set: the database answers again

    async def last_id(self) -> int:
        if not self.stuck:
            return await super().last_id()
        self.asked += 1
        try:
            await self.answering.wait()
        except asyncio.CancelledError:
            await asyncio.sleep(5)
            raise
        return await super().last_id()


class FailingStore(InMemoryEventStore):
    """A log whose reads and writes fail as unavailable, with nothing to say why."""

    failing = False

    async def get(self, event_id: int) -> Any:
        if self.failing:
            raise StoreUnavailableError("")
        return await super().get(event_id)

    async def append(self, events: Any, expected_last_id: int | None = None) -> Any:
        if self.failing:
            raise StoreUnavailableError("")
        return await super().append(events, expected_last_id)


async def timed_status(client: TestClient) -> tuple[float, int, dict[str, Any]]:
    began = time.monotonic()
    response = await client.get("/.well-known/status", headers=AUTH)
    document = await response.json()
    return time.monotonic() - began, response.status, document["data"]


async def test_the_status_answers_within_two_seconds_when_the_database_hangs(
    aiohttp_client: Any,
):
    """With the log's database answering nothing, each status is a 500 "unhealthy" within
    2 s saying for how long it has not answered; the question is asked once, not once per
    status; once the database answers again, the status is healthy."""
    store = StuckStore()
    client = await aiohttp_client(create_app(Settings(auth_keys=(KEY,)), store=store))
    store.stuck = True
    reasons = []
    for _ in range(3):
        took, status, data = await timed_status(client)
        assert took < STATUS_WITHIN and status == 500 and data["status"] == "unhealthy"
        reasons.append(data["problems"]["database"])
    assert store.asked == 1
    assert all("has not answered for" in reason for reason in reasons), reasons
    store.answering.set()
    took, status, data = await timed_status(client)
    assert status == 200 and data["status"] == "healthy"


async def test_every_503_says_why_and_when_to_retry(aiohttp_client: Any):
    """A write or a read of the log refused while its database is away, and a stream over
    MAX_STREAMS: each a 503 service_unavailable with `Retry-After` and a message that is
    not empty, even when the failure itself said nothing."""
    store = FailingStore()
    settings = Settings(auth_keys=(KEY,), max_streams=0)
    client = await aiohttp_client(create_app(settings, store=store), headers=AUTH)
    store.failing = True
    answers = [
        await client.post("/apps", data=b'{"name": "a"}', headers=JSON),
        await client.get("/events/1"),
        await client.get("/events", headers={"Accept": "text/event-stream"}),
    ]
    for response in answers:
        document = orjson.loads(await response.read())
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert document["code"] == "service_unavailable" and document["retry"] is True
        assert document["message"].strip(" ;:"), document
    assert "MAX_STREAMS" in orjson.loads(await answers[2].read())["message"]


@pytest.mark.parametrize("status", [400, 404, 409])
async def test_other_errors_do_not_ask_for_a_retry_later(aiohttp_client: Any, status: int):
    """Retry-After belongs to 503s only."""
    client = await aiohttp_client(
        create_app(Settings(auth_keys=(KEY,)), store=InMemoryEventStore()), headers=AUTH
    )
    await client.post("/apps", json={"name": "taken"})
    requests: dict[int, Callable[[], Awaitable[aiohttp.ClientResponse]]] = {
        400: lambda: client.post("/apps", data=b"{", headers=JSON),
        404: lambda: client.get("/apps/nope"),
        409: lambda: client.post("/apps", json={"name": "taken"}),
    }
    answer = await requests[status]()
    assert answer.status == status and "Retry-After" not in answer.headers
