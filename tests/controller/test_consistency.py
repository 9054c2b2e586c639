"""Read-your-writes between two services on one log, one of them folding it late: catch-up
before "not found" and before resolving a name, the Evenflow-Event-Id token both ways, and
no database round trip for what is found by id."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from controller.app import create_app
from controller.consistency import HEADER, LogHead
from controller.dashboard.sessions import COOKIE
from controller.dashboard.sessions import HEADER as DASHBOARD_MARK
from eventstore.record import ALL_EVENTS, EventFilter, NewEvent, RecordedEvent
from eventstore.store import EventStore
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY
from tests.controller.test_scopes import NO_AUTH, basic, make_key

STREAM = {"Accept": "text/event-stream"}
#: How late the lagging service folds each event it follows.
LAG = 0.4


class LaggingStore:
    """The log as a service sees it when its follower runs late: every event reaches its
    subscriptions LAG seconds after it was read; everything else is the log itself. Counts
    the head queries."""

    def __init__(self, log: EventStore, lag: float = LAG) -> None:
        self.log = log
        self.lag = lag
        self.read_lag = 0.0  # how late a read of the log begins (set: the database is slow)
        self.head_queries = 0

    async def append(
        self, events: Sequence[NewEvent], expected_last_id: int | None = None
    ) -> list[RecordedEvent]:
        return await self.log.append(events, expected_last_id)

    async def append_after(
        self, after: int, decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]]
    ) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
        return await self.log.append_after(after, decide)

    async def last_id(self) -> int:
        self.head_queries += 1
        return await self.log.last_id()

    async def get(self, event_id: int) -> RecordedEvent | None:
        return await self.log.get(event_id)

    async def read(self, after: int = 0, **options: Any) -> AsyncIterator[RecordedEvent]:
        await asyncio.sleep(self.read_lag)
        async for record in self.log.read(after, **options):
            yield record

    def read_backward(self, **options: Any) -> AsyncIterator[RecordedEvent]:
        return self.log.read_backward(**options)

    async def subscribe(
        self, after: int = 0, filter: EventFilter = ALL_EVENTS
    ) -> AsyncIterator[RecordedEvent]:
        async for record in self.log.subscribe(after, filter):
            await asyncio.sleep(self.lag)
            yield record

    async def close(self) -> None:
        pass


def settings(timeout: float = 5.0) -> Settings:
    return Settings(auth_keys=(AUTH_KEY,), consistency_timeout=timeout)


@pytest.fixture
async def writer(aiohttp_client: AiohttpClient, store: EventStore) -> TestClient:
    """A service on the log that takes the writes."""
    return await aiohttp_client(create_app(settings(), store=store), headers=AUTH_HEADERS)


@pytest.fixture
def lagging(store: EventStore) -> LaggingStore:
    return LaggingStore(store)


@pytest.fixture
async def reader(aiohttp_client: AiohttpClient, lagging: LaggingStore) -> TestClient:
    """A service on the same log whose fold follows it LAG seconds late."""
    return await aiohttp_client(create_app(settings(), store=lagging), headers=AUTH_HEADERS)


async def new_app(client: TestClient, name: str) -> tuple[str, int]:
    response = await client.post("/apps", json={"name": name})
    assert response.status == 200, await response.text()
    return (await response.json())["id"], int(response.headers[HEADER])


async def test_an_app_created_elsewhere_is_found_at_once(writer: TestClient, reader: TestClient):
    """Right after a create on one service, the lagging one answers the app, its log and
    its releases by id instead of a 404."""
    app_id, _ = await new_app(writer, "fresh")
    for path in (f"/apps/{app_id}", f"/apps/{app_id}/log", f"/apps/{app_id}/releases"):
        response = await reader.get(path)
        assert response.status == 200, path


async def test_a_write_naming_an_object_created_elsewhere_succeeds(
    writer: TestClient,
    reader: TestClient,
):
    """An update through the lagging service of an app created a moment ago elsewhere is
    recorded, not refused as not found."""
    app_id, _ = await new_app(writer, "updated")
    response = await reader.post(f"/apps/{app_id}", json={"meta": {"k": "v"}})
    assert response.status == 200, await response.text()
    assert (await response.json())["meta"] == {"k": "v"}


async def test_a_name_taken_again_resolves_to_the_new_app(
    writer: TestClient,
    reader: TestClient,
):
    """After an app is deleted and its name given to a new app, a lagging service resolves
    the name to the new app, not to the deleted one it still holds."""
    old_id, _ = await new_app(writer, "reused")
    assert (await reader.get("/apps/reused")).status == 200  # the reader folds the old one
    assert (await writer.delete(f"/apps/{old_id}")).status == 200
    new_id, _ = await new_app(writer, "reused")
    response = await reader.get("/apps/reused")
    assert response.status == 200
    assert (await response.json())["id"] == new_id != old_id


async def test_a_stream_filtered_on_a_new_app_gets_every_later_event(
    writer: TestClient,
    reader: TestClient,
):
    """A stream opened on the lagging service for an app just created elsewhere starts
    (no 404) and receives every update made after it opened, in id order."""
    app_id, _ = await new_app(writer, "streamed")
    stream = await reader.get("/events", params={"app_id": app_id}, headers=STREAM)
    assert stream.status == 200
    written = []
    for n in range(3):
        response = await writer.post(f"/apps/{app_id}", json={"meta": {"n": str(n)}})
        written.append(int(response.headers[HEADER]))
    seen: list[int] = []
    async with asyncio.timeout(10):
        while len(seen) < 3:
            line = await stream.content.readline()
            assert line, f"the stream ended after {seen}"
            if line.startswith(b"id: "):
                seen.append(int(line[4:]))
    assert seen == written
    stream.close()


async def test_a_formation_stream_starts_from_a_caught_up_fold(
    writer: TestClient,
    reader: TestClient,
):
    """The formation stream of the lagging service begins with a formation scaled a moment
    ago elsewhere, before its backlog's end."""
    app_id, _ = await new_app(writer, "scaled")
    artifact = await (
        await writer.post("/artifacts", json={"type": "docker", "uri": "https://e/a"})
    ).json()
    release = await (
        await writer.post(
            "/releases", json={"artifact": artifact["id"], "processes": {"web": {"cmd": ["a"]}}}
        )
    ).json()
    path = f"/apps/{app_id}/formations/{release['id']}"
    assert (await writer.put(path, json={"processes": {"web": 2}})).status == 200
    since = {"since": "2000-01-01T00:00:00Z"}
    stream = await reader.get("/formations", params=since, headers=STREAM)
    assert stream.status == 200, await stream.text()
    frames: list[bytes] = []
    async with asyncio.timeout(10):
        while not frames or b'"updated_at":"0001-01-01' not in frames[-1]:
            line = await stream.content.readline()
            assert line, f"the stream ended after {frames}"
            if line.startswith(b"data: "):
                frames.append(line)
    assert any(app_id.encode() in frame and b'"web":2' in frame for frame in frames[:-1])
    stream.close()


async def test_writes_answer_with_their_last_event_and_reads_with_the_folds_position(
    writer: TestClient,
):
    """A write's Evenflow-Event-Id is the id of its last event; a read's is the position
    of the fold it was answered from."""
    app_id, position = await new_app(writer, "positions")
    events = await (
        await writer.get(
            "/events", params={"app_id": app_id}, headers={"Accept": "application/json"}
        )
    ).json()
    assert position == max(event["id"] for event in events)
    response = await writer.get(f"/apps/{app_id}")
    assert int(response.headers[HEADER]) == position


async def test_a_read_with_a_token_sees_the_write_it_names(
    writer: TestClient,
    reader: TestClient,
):
    """A list read on the lagging service, sent with the token of a write made elsewhere,
    holds that write (without the token it would not yet)."""
    _, position = await new_app(writer, "listed")
    response = await reader.get("/apps", headers={HEADER: str(position)})
    assert response.status == 200
    assert "listed" in [app["name"] for app in await response.json()]
    assert int(response.headers[HEADER]) >= position


async def test_a_token_the_fold_cannot_reach_in_time_is_a_503_to_retry(
    aiohttp_client: Any,
    store: EventStore,
    writer: TestClient,
):
    """When the fold does not reach the token within CONSISTENCY_TIMEOUT, the answer is
    503 service_unavailable with retry true and a Retry-After."""
    slow = LaggingStore(store, lag=3.0)
    impatient = await aiohttp_client(create_app(settings(0.2), store=slow), headers=AUTH_HEADERS)
    slow.read_lag = 3.0
    _, position = await new_app(writer, "too-late")
    response = await impatient.get("/apps", headers={HEADER: str(position)})
    document = await response.json()
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert document["code"] == "service_unavailable" and document["retry"] is True


async def test_a_fold_whose_follower_hears_nothing_reads_the_log_itself(
    aiohttp_client: Any,
    store: EventStore,
    writer: TestClient,
):
    """When the follower does not fold a write (its notification never comes), a request
    waiting for it reads the log itself: answered well within the timeout."""
    deaf = LaggingStore(store, lag=60.0)
    reader = await aiohttp_client(create_app(settings(), store=deaf), headers=AUTH_HEADERS)
    app_id, position = await new_app(writer, "unheard")
    async with asyncio.timeout(2):
        by_token = await reader.get("/apps", headers={HEADER: str(position)})
        by_id = await reader.get(f"/apps/{app_id}")
    assert by_token.status == 200 and "unheard" in [a["name"] for a in await by_token.json()]
    assert by_id.status == 200


@pytest.mark.parametrize("token", ["x", "-1", "1.0", "٣", str(2**63), " ", "1" * 5000])
async def test_a_malformed_token_is_a_400(writer: TestClient, token: str):
    """A token that is not a non-negative 64-bit integer is a validation_error."""
    response = await writer.get("/apps", headers={HEADER: token})
    assert response.status == 400
    assert (await response.json())["code"] == "validation_error"


async def test_a_token_beyond_the_logs_head_is_a_400_at_once(writer: TestClient):
    """A token naming no event of this log is refused without waiting for it."""
    _, position = await new_app(writer, "ahead")
    async with asyncio.timeout(2):
        response = await writer.get("/apps", headers={HEADER: str(position + 1000)})
    assert response.status == 400
    assert "beyond" in (await response.json())["message"]


async def test_found_by_id_costs_no_head_query_and_not_found_costs_one(
    writer: TestClient,
    reader: TestClient,
    lagging: LaggingStore,
):
    """What is found by id asks the database nothing; a name, an unknown app and a 404 ask
    for the log's head once each."""
    app_id, position = await new_app(writer, "counted")
    assert (await reader.get(f"/apps/{app_id}", headers={HEADER: str(position)})).status == 200
    before = lagging.head_queries
    for _ in range(5):
        assert (await reader.get(f"/apps/{app_id}")).status == 200
        assert (await reader.get(f"/apps/{app_id}/releases")).status == 200
    assert lagging.head_queries == before
    assert (await reader.get("/apps/counted")).status == 200
    assert lagging.head_queries == before + 1
    assert (await reader.get("/apps/00000000-0000-4000-8000-000000000000")).status == 404
    assert lagging.head_queries == before + 2


async def test_a_key_made_elsewhere_is_accepted_at_once(
    writer: TestClient,
    reader: TestClient,
    lagging: LaggingStore,
):
    """A key made through one service, and a dashboard session opened with it there, are
    accepted by the lagging service at once (a 401 until its fold got there, otherwise):
    in a header, as ?key= on a stream, and as the session's cookie. A key nobody made is
    still a 401, after one head query."""
    secret = await make_key(writer, "by-header", "read")
    assert (await reader.get("/apps", headers=basic(secret))).status == 200

    secret = await make_key(writer, "by-param", "stream")
    stream = {**NO_AUTH, "Accept": "text/event-stream"}
    async with reader.get(f"/events?key={secret}", headers=stream) as response:
        assert response.status == 200

    secret = await make_key(writer, "by-session", "read")
    signed = await writer.post(
        "/dashboard/session", json={"key": secret}, headers={DASHBOARD_MARK: "1"}
    )
    assert signed.status == 200, await signed.text()
    cookie = {**NO_AUTH, "Cookie": f"{COOKIE}={signed.cookies[COOKIE].value}"}
    assert (await reader.get("/apps", headers=cookie)).status == 200

    before = lagging.head_queries
    assert (await reader.get("/apps", headers=basic("made-by-nobody"))).status == 401
    assert lagging.head_queries == before + 1


async def test_answers_expose_the_token_to_browsers(writer: TestClient):
    """CORS lets a page read Evenflow-Event-Id and send it back."""
    response = await writer.get("/apps", headers={"Origin": "https://dash.test"})
    assert HEADER in response.headers["Access-Control-Expose-Headers"]
    assert HEADER in response.headers["Access-Control-Allow-Headers"]


async def test_concurrent_askers_share_one_head_query_sent_after_they_asked(
    store: EventStore,
):
    """Callers that ask together share one query; a caller asking once it was sent gets a
    query of its own, which sees what was appended meanwhile."""
    counting = LaggingStore(store)
    head = LogHead(counting)
    first = await asyncio.gather(*[head.now() for _ in range(10)])
    assert counting.head_queries == 1 and len(set(first)) == 1
    await store.append([NewEvent("Probe", "probe", "x", None, b"{}")])
    assert await head.now() > first[0]
    assert counting.head_queries == 2
    await head.close()


async def test_keyless_answers_say_nothing_of_the_log(writer: TestClient):
    """/ping, open to anyone, carries no log position."""
    await new_app(writer, "quiet")
    response = await writer.get("/ping")
    assert response.status == 200 and HEADER not in response.headers


async def test_the_openapi_document_describes_the_token_both_ways(writer: TestClient):
    """Every keyed operation takes Evenflow-Event-Id and answers with it, or a 503."""
    doc = await (await writer.get("/openapi.json")).json()
    operation = doc["paths"]["/apps/{app}"]["get"]
    assert HEADER in [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert HEADER in operation["responses"]["200"]["headers"]
    assert "503" in doc["paths"]["/apps"]["post"]["responses"]
    ping = doc["paths"]["/ping"]["get"]
    assert HEADER not in [p["name"] for p in ping["parameters"]]
    assert HEADER not in ping["responses"]["200"]["headers"]
