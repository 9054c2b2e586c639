"""The time machine over HTTP: the platform or an app at a point, what changed between two
points with the events' actors, and the checkpoints that bound a fold's cost."""

import attrs
from aiohttp.test_utils import TestClient

from controller import keys
from domain.codec import encode, encode_meta
from domain.events import AppReleaseSet
from domain.objects import Release
from eventstore.memory import InMemoryEventStore
from replay.checkpoints import Checkpoints, FoldPending, TooFarError
from replay.fold import rebuild
from replay.views import state_document
from tests.controller.api import create_app, ok_json
from tests.projections.synthetic import append_synthetic


async def release(client: TestClient, env: dict[str, str]):
    artifact = await ok_json(
        await client.post("/artifacts", json={"type": "docker", "uri": "https://example.com/a.tar"})
    )
    return await ok_json(
        await client.post("/releases", json={"artifact": artifact["id"], "env": env})
    )


async def position(client: TestClient) -> int:
    return int((await client.get("/apps")).headers["Evenflow-Event-Id"])


async def test_the_state_at_a_point_is_the_app_as_it_was_then(client: TestClient):
    """An app's env at the point before its release changed is the old one, now the new."""
    app = await create_app(client, "then")
    first = await release(client, {"GREETING": "hello"})
    await client.put(f"/apps/{app['id']}/release", json={"id": first["id"]})
    before = await position(client)
    second = await release(client, {"GREETING": "bonjour"})
    await client.put(f"/apps/{app['id']}/release", json={"id": second["id"]})
    old = await ok_json(await client.get(f"/dashboard/history/state?at={before}&app=then"))
    new = await ok_json(await client.get("/dashboard/history/state?app=then"))
    assert old["last_event_id"] == before
    assert old["apps"][0]["release"]["env"] == {"GREETING": "hello"}
    assert new["apps"][0]["release"]["env"] == {"GREETING": "bonjour"}
    assert (await client.get("/dashboard/history/state?at=0&app=then")).status == 404


async def test_changes_list_env_before_and_after_and_who_made_them(client: TestClient):
    """Between two points: the env's old and new values, and the event that changed it
    with the actor its meta recorded (not where the request came from)."""
    app = await create_app(client, "changed")
    first = await release(client, {"GREETING": "hello", "GONE": "x"})
    await client.put(f"/apps/{app['id']}/release", json={"id": first["id"]})
    before = await position(client)
    second = await release(client, {"GREETING": "bonjour"})
    event = AppReleaseSet(app["id"], Release.from_json(second), Release.from_json(first))
    actor = {"key": "alice", "request_id": "r1"}
    private = {"address": "192.0.2.7", "user_agent": "curl"}
    store = client.app[keys.STORE]
    [recorded] = await store.append(
        [attrs.evolve(encode(event), meta=encode_meta({"actor": actor | private}))]
    )
    await client.app[keys.READ_MODEL].catch_up(store)
    doc = await ok_json(
        await client.get(f"/dashboard/history/changes?at_from={before}&app=changed")
    )
    assert doc["changes"]["env"] == {
        "GONE": {"before": "x", "after": None},
        "GREETING": {"before": "hello", "after": "bonjour"},
    }
    assert doc["by"]["env"] == [recorded.id]
    assert [e["actor"] for e in doc["events"] if e["id"] == recorded.id] == [actor]
    assert doc["from"]["event_id"] == before and doc["to"]["event_id"] == recorded.id


async def test_bad_points_are_400s_and_an_unknown_app_a_404(client: TestClient):
    """A point beyond the log, a malformed one, reversed points: Flynn's validation error."""
    await create_app(client, "points")
    head = await position(client)
    for query in (f"at={head + 1}", "at=x", "at_time=yesterday", f"at_from={head}&at=0"):
        response = await client.get(f"/dashboard/history/changes?{query}")
        assert response.status == 400, query
        assert (await response.json())["code"] == "validation_error"
    assert (await client.get("/dashboard/history/state?app=nobody")).status == 404


async def test_the_apps_at_a_glance_count_processes_and_jobs(client: TestClient):
    """GET /dashboard/apps: each app with its release and its formation's counts."""
    app = await create_app(client, "glance")
    first = await release(client, {})
    body = {"artifact": first["artifact"], "processes": {"web": {"cmd": ["w"]}}}
    rel = await ok_json(await client.post("/releases", json=body))
    await client.put(f"/apps/{app['id']}/release", json={"id": rel["id"]})
    await client.put(f"/apps/{app['id']}/formations/{rel['id']}", json={"processes": {"web": 2}})
    [summary] = await ok_json(await client.get("/dashboard/apps"))
    assert summary["name"] == "glance" and summary["release"] == rel["id"]
    assert summary["processes"] == {"web": 2} and summary["deployment"] is None


async def filled_store(apps: int) -> InMemoryEventStore:
    """A busy platform's log (tests/projections/synthetic.py)."""
    store = InMemoryEventStore()
    await append_synthetic(store, apps, jobs=4)
    return store


async def test_a_fold_from_a_checkpoint_equals_the_fold_from_the_start():
    """Folding to any point from the checkpoints gives the same state as a fold of the
    whole prefix, and checkpoints stay within their budget as the spacing grows."""
    store = await filled_store(60)
    head = await store.last_id()
    points = Checkpoints(store, every=50, max_bytes=200_000)
    await points.fold()
    assert points.kept and points.kept_bytes <= 200_000
    for at in (0, 1, head // 3, head // 2 + 7, head):
        from_checkpoint = await state_document(await points.fold(until=at))
        from_start = await state_document(await rebuild(store, until=at))
        assert from_checkpoint == from_start, at


async def test_a_point_too_far_is_folded_in_steps_or_refused():
    """A fold goes at most max_fold events: it keeps a checkpoint and says to ask again,
    and the next question gets there; with no room for checkpoints it is refused."""
    store = await filled_store(60)
    head = await store.last_id()
    points = Checkpoints(store, every=100, max_fold=head // 2 + 1)
    try:
        await points.fold()
        raise AssertionError("the whole log folded in one question")
    except FoldPending as pending:
        assert 0 < pending.reached < head
    assert (await points.fold()).last_event_id == head
    cramped = Checkpoints(store, every=100, max_fold=head // 2 + 1, max_bytes=10)
    try:
        await cramped.fold()
        raise AssertionError("folded beyond max_fold with no checkpoint")
    except TooFarError as error:
        assert "replay state" in str(error)
