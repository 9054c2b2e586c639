"""GET /events listings served from the event streams' window answer exactly what the log
answers, whatever part of them the window holds."""

import itertools

from aiohttp.test_utils import TestClient

from controller.broadcast import BROADCASTER

JSON_ACCEPT = {"Accept": "application/json"}


async def body(client: TestClient, query: dict[str, str]) -> bytes:
    response = await client.get("/events", params=query, headers=JSON_ACCEPT)
    assert response.status == 200, await response.text()
    return await response.read()


async def test_window_listings_equal_the_logs(client: TestClient):
    """Every combination of filter, before_id, since_id and count, with the window holding
    all of the log, then only its newest events: byte for byte what the store answers."""
    apps = []
    for n in range(4):
        response = await client.post("/apps", json={"name": f"win-{n}"})
        apps.append(await response.json())
        await client.post(f"/apps/win-{n}", json={"meta": {"n": str(n)}})
    broadcaster = client.app[BROADCASTER]
    head = broadcaster.head
    filters = [{}, {"app_id": apps[1]["id"]}, {"object_types": "app"}, {"object_types": "route"}]
    bounds = [None, "1", str(head // 2), str(head + 5)]
    counts = [None, "0", "1", "3", "100"]
    windows = [broadcaster.window_events, 3]
    answered = {window: 0 for window in windows}
    for window in windows:
        broadcaster.window_events = window
        broadcaster._evict()
        broadcaster._bodies.clear()  # bodies are kept per head; the window changed under them
        for where, before, since, count in itertools.product(filters, bounds, bounds, counts):
            query = dict(where)
            for name, value in (("before_id", before), ("since_id", since), ("count", count)):
                if value is not None:
                    query[name] = value
            listing = broadcaster.listing
            results: list[object] = []

            def counted(*args: object, listing: object = listing, got: list = results) -> object:
                got.append(listing(*args))  # type: ignore[operator]
                return got[-1]

            broadcaster.listing = counted
            served = await body(client, query)
            broadcaster.listing_body = lambda *a: None
            try:
                from_log = await body(client, query)
            finally:
                del broadcaster.listing_body
                broadcaster.listing = listing
            assert served == from_log, (window, query)
            answered[window] += sum(result is not None for result in results)
    # The whole log is in the big window; the small one answers only some listings.
    combinations = len(filters) * len(bounds) ** 2 * len(counts)
    assert answered[windows[0]] == combinations
    assert 0 < answered[3] < combinations


async def test_a_kept_listing_is_rebuilt_once_the_log_moves(client: TestClient):
    """The same query, asked again after a write, lists the write."""
    await client.post("/apps", json={"name": "kept-1"})
    first = await (await client.get("/events?count=3", headers=JSON_ACCEPT)).json()
    assert first == await (await client.get("/events?count=3", headers=JSON_ACCEPT)).json()
    created = await (await client.post("/apps", json={"name": "kept-2"})).json()
    again = await (await client.get("/events?count=3", headers=JSON_ACCEPT)).json()
    assert again[0]["id"] > first[0]["id"]
    assert created["id"] in {event["object_id"] for event in again}


async def test_a_write_is_listed_as_soon_as_it_is_answered(client: TestClient):
    """Read-your-writes: the window holds a command's events before its response leaves."""
    for n in range(5):
        created = await (await client.post("/apps", json={"name": f"now-{n}"})).json()
        newest = await (await client.get("/events?count=2", headers=JSON_ACCEPT)).json()
        assert created["id"] in {event["object_id"] for event in newest}
