"""GET /apps/:app/log: newline-delimited JSON or SSE from the bounded per-app log store."""

import asyncio
from datetime import UTC, datetime

import orjson
from aiohttp.test_utils import TestClient

from applog.store import LogLine, LogQuery, MemoryLogStore
from controller import keys

T0 = datetime(2015, 12, 16, 2, 20, 56, 663589, tzinfo=UTC)


async def app_with_lines(client: TestClient, n: int) -> tuple[str, MemoryLogStore]:
    app = await (await client.post("/apps", json={"name": "logged"})).json()
    store = client.app[keys.LOG_STORE]
    for i in range(n):
        store.write(
            LogLine(
                app["id"],
                f"line {i}",
                T0,
                job_id=f"host-{i % 2}",
                process_type="web" if i % 2 else "",
                host_id="host",
            )
        )
    return app["id"], store


async def ndjson(client: TestClient, **params: str) -> list[dict]:
    response = await client.get("/apps/logged/log", params=params)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain"
    return [orjson.loads(line) for line in (await response.read()).splitlines()]


async def test_lines_returns_the_last_n_lines_in_flynns_message_shape(client: TestClient):
    """Without follow, `lines=N` answers the N most recent lines as JSON lines."""
    await app_with_lines(client, 5)
    lines = await ndjson(client, lines="2")
    assert [line["msg"] for line in lines] == ["line 3", "line 4"]
    assert lines[0] == {
        "host_id": "host",
        "job_id": "host-1",
        "msg": "line 3",
        "process_type": "web",
        "source": "app",
        "stream": "stdout",
        "timestamp": "2015-12-16T02:20:56.663589Z",
    }
    assert len(await ndjson(client)) == 5


async def test_filters_by_job_and_process_type_where_empty_means_one_off(client: TestClient):
    """job_id selects one job; process_type= (empty) selects lines of jobs without a type."""
    await app_with_lines(client, 6)
    assert {line["job_id"] for line in await ndjson(client, job_id="host-0")} == {"host-0"}
    assert all("process_type" not in line for line in await ndjson(client, process_type=""))
    assert {line["process_type"] for line in await ndjson(client, process_type="web")} == {"web"}


async def test_sse_sends_messages_then_eof(client: TestClient):
    """With an event-stream Accept, each line is a message frame and the stream ends with eof."""
    await app_with_lines(client, 2)
    response = await client.get("/apps/logged/log", headers={"Accept": "text/event-stream"})
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    frames = (await response.read()).split(b"\n\n")
    payloads = [orjson.loads(f.removeprefix(b"data: ")) for f in frames if f]
    assert [p["event"] for p in payloads] == ["message", "message", "eof"]
    assert payloads[0]["data"]["msg"] == "line 0"


async def test_follow_streams_new_lines_as_they_are_written(client: TestClient):
    """follow=true with lines=1 sends the last line, then each new line as it comes."""
    app_id, store = await app_with_lines(client, 3)
    response = await client.get("/apps/logged/log", params={"follow": "true", "lines": "1"})
    first = orjson.loads(await response.content.readline())
    assert first["msg"] == "line 2"
    store.write(LogLine(app_id, "fresh", T0))
    fresh = orjson.loads(await asyncio.wait_for(response.content.readline(), 5))
    assert fresh["msg"] == "fresh"
    response.close()


async def test_invalid_lines_is_a_400_not_a_500(client: TestClient):
    """A non-integer or out-of-range `lines` is a validation error."""
    await app_with_lines(client, 1)
    for value in ("x", "-1", "10001"):
        response = await client.get("/apps/logged/log", params={"lines": value})
        assert response.status == 400 and (await response.json())["detail"] == {"field": "lines"}


def test_the_store_keeps_a_bounded_window_per_app():
    """Only the last lines_per_app lines of an app are kept."""
    store = MemoryLogStore(lines_per_app=3)
    for i in range(5):
        store.write(LogLine("a", str(i), T0))
    lines, position = store.recent("a", None, LogQuery())
    assert [line.msg for line in lines] == ["2", "3", "4"] and position == 5
