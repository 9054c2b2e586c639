"""PostgreSQL hung (every process stopped) for longer than the append timeout, under writes:
no answer is wrong about a commit. A write answered "not acknowledged" is never in the log;
one whose outcome could not be told says so; a write retried with its Idempotency-Key until
it succeeds is in the log exactly once."""

import asyncio
from typing import Any

import aiohttp
import attrs
import orjson
import pytest

from eventstore.outcome import RESOLVE_TIMEOUT
from eventstore.postgres import APPEND_TIMEOUT, CONNECT_TIMEOUT, PostgresEventStore
from localpg import LocalPG
from projections.idempotency import key_of
from tests.reliability.conftest import report
from tests.reliability.hang import hung
from tests.reliability.service import AUTH, JSON, Service

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

#: Long enough for the append in flight to time out and be found undecidable, and for the
#: next ones to fail connecting: both kinds of 503 happen while the database hangs.
HANG = APPEND_TIMEOUT + RESOLVE_TIMEOUT + 3 * CONNECT_TIMEOUT + 2
PLAIN_WRITERS = 6
KEYED_WRITERS = 6
NOT_WRITTEN = "the write was not acknowledged, retry it"
UNKNOWN = "the write may have been committed"

Answer = tuple[int, dict[str, Any] | None]


@attrs.define
class Writes:
    """Every answer, by what was sent."""

    session: aiohttp.ClientSession
    url: str
    plain: dict[str, Answer] = attrs.field(factory=dict)  # app name -> its one answer
    keyed: dict[str, list[Answer]] = attrs.field(factory=dict)  # key -> its attempts' answers
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def post(self, path: str, body: Any, headers: dict[str, str]) -> Answer:
        async with self.session.post(
            self.url + path, data=orjson.dumps(body), headers=AUTH | JSON | headers
        ) as r:
            data = await r.read()
            return r.status, orjson.loads(data) if data else None

    async def plain_writer(self, w: int) -> None:
        """New apps without a key: each is sent once, whatever the answer."""
        n = 0
        while not self.stop.is_set():
            name = f"plain-{w}-{n}"
            n += 1
            self.plain[name] = answer = await self.post("/apps", {"name": name}, {})
            if answer[0] != 200:
                await asyncio.sleep(0.2)

    async def keyed_writer(self, w: int) -> None:
        """Meta updates, each with its own key, sent again until one is acknowledged."""
        n = 0
        while not self.stop.is_set():
            key = f"meta-{w}-{n}"
            n += 1
            attempts = self.keyed[key] = []
            while not attempts or attempts[-1][0] != 200:
                if attempts:
                    await asyncio.sleep(0.2)
                body = {"meta": {"write": key}}
                attempts.append(
                    await self.post("/apps/target/meta", body, {"Idempotency-Key": key})
                )

    def answers(self) -> list[tuple[str, Answer]]:
        every = list(self.plain.items())
        return every + [(key, a) for key, attempts in self.keyed.items() for a in attempts]


def says(answer: Answer, text: str) -> bool:
    status, doc = answer
    return status == 503 and doc is not None and text in doc["message"]


async def test_a_hung_database_gets_no_answer_wrong_about_a_commit(
    own_pg: LocalPG,
    service: Service,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
) -> None:
    """Writers with and without keys while the database hangs past the append timeout."""
    writes = Writes(session, service.url)
    assert (await writes.post("/apps", {"name": "target"}, {}))[0] == 200
    tasks = [asyncio.create_task(writes.plain_writer(w)) for w in range(PLAIN_WRITERS)]
    tasks += [asyncio.create_task(writes.keyed_writer(w)) for w in range(KEYED_WRITERS)]
    await asyncio.sleep(2)
    with hung(own_pg):
        await asyncio.sleep(HANG)
    await asyncio.sleep(10)
    writes.stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)

    store = await PostgresEventStore.open(own_pg.dsn("evenflow"), migrate_schema=False)
    try:
        log = [e async for e in store.read()]
    finally:
        await store.close()
    created = {orjson.loads(e.data)["name"] for e in log if e.type == "AppCreated"}
    keys_logged = [key for e in log if (key := key_of(e)) is not None]

    every = writes.answers()
    assert all(a[0] == 200 or says(a, NOT_WRITTEN) or says(a, UNKNOWN) for _, a in every), [
        a for _, a in every if a[0] != 200
    ]
    not_written = [name for name, a in writes.plain.items() if says(a, NOT_WRITTEN)]
    unknown = [(what, a) for what, a in every if says(a, UNKNOWN)]
    assert not_written and unknown, "the hang did not meet writes in flight and after"
    # Not written: not in the log, ever. Unknown: retry only when a key makes it safe.
    assert set(not_written).isdisjoint(created), "a write said not to be written is in the log"
    assert {name for name, a in writes.plain.items() if a[0] == 200} <= created
    assert all(a[1]["retry"] is (what in writes.keyed) for what, a in unknown)  # type: ignore[index]
    # Every keyed write was retried until acknowledged, and is in the log exactly once.
    assert all(attempts[-1][0] == 200 for attempts in writes.keyed.values())
    assert sorted(keys_logged) == sorted(writes.keyed), "a keyed write is missing or twice"

    plain_unknown = [name for name, a in writes.plain.items() if says(a, UNKNOWN)]
    retried = [key for key, attempts in writes.keyed.items() if len(attempts) > 1]
    report(request, "writes answered not written (none of them in the log)", len(not_written))
    report(request, "writes answered outcome unknown", len(unknown))
    report(request, "... without a key, committed once the database continued",
           f"{len(set(plain_unknown) & created)} of {len(plain_unknown)}")  # fmt: skip
    report(request, "keyed writes retried until acknowledged, each once in the log", len(retried))
    report(request, "an outcome-unknown answer", unknown[0][1][1])
