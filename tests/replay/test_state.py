"""`replay state`: the state after any event, or at any time, of the whole log or one app."""

from typing import Any

import pytest

from eventstore.memory import InMemoryEventStore
from replay.fold import rebuild
from replay.views import state_document, state_text


async def shop_at(store: InMemoryEventStore, event_id: int) -> dict[str, Any]:
    doc = await state_document(await rebuild(store, until=event_id), "shop")
    (view,) = doc["apps"]
    assert isinstance(view, dict)
    return view


def processes(view: dict[str, Any]) -> dict[str, Any]:
    return {f["release"]: f["processes"] for f in view["formations"]}


async def test_each_intermediate_state_is_the_one_the_service_had(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """Before the first release, after v1, after v2, with a job and a route, and at the end."""
    at, (r1, r2) = history["at"], [r["id"] for r in history["releases"]]
    created = await shop_at(store, at["created"])
    assert created["release"] is None and created["formations"] == []
    assert [route["domain"] for route in created["routes"]] == ["shop.evenflow.test"]
    v1 = await shop_at(store, at["v1"])
    assert v1["app"]["release"] == r1 and v1["release"]["env"] == {"V": "1"}
    assert processes(v1) == {r1: {"web": 1}}
    v2 = await shop_at(store, at["v2"])
    assert v2["app"]["release"] == r2
    assert processes(v2) == {r1: {"web": 1}, r2: {"web": 3, "worker": 1}}
    assert v2["jobs"] == []
    running = await shop_at(store, at["running"])
    assert [(j["state"], j["release"]) for j in running["jobs"]] == [("up", r2)]
    assert len(running["routes"]) == 2 and running["resources"] == []
    end = await shop_at(store, at["end"])
    assert end["app"]["meta"] == {"team": "b"} and v2["app"]["meta"] == {"team": "a"}
    assert [r["apps"] for r in end["resources"]] == [[history["app"]["id"]]]


async def test_a_point_in_time_is_the_state_after_the_last_event_committed_by_then(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """--at-time T folds exactly the events committed at or before T."""
    v1 = history["at"]["v1"]
    moment = (await store.get(v1)).created_at  # type: ignore[union-attr]
    by_time = await rebuild(store, at_time=moment)
    assert by_time.last_event_id == v1
    assert await state_document(by_time, "shop") == await state_document(
        await rebuild(store, until=v1), "shop"
    )


async def test_an_app_deleted_later_is_live_before_and_deleted_after(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """By name or id: live before its deletion; after it, found among the deleted apps."""
    end = history["at"]["end"]
    before = await state_document(await rebuild(store, until=end - 2), "temp")
    after = await state_document(await rebuild(store, until=end), history["temp"]["id"])
    assert [v["deleted"] for v in before["apps"] + after["apps"]] == [False, True]
    whole = await state_document(await rebuild(store))
    assert [a["app"]["name"] for a in whole["apps"]] == ["batch", "shop"]
    assert whole["deleted_apps"] == [{"id": history["temp"]["id"], "name": "temp"}]
    assert [p["name"] for p in whole["providers"]] == ["pg"]


async def test_an_app_unknown_at_that_point_is_a_lookup_error(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """`batch` did not exist yet after v2."""
    with pytest.raises(LookupError):
        await state_document(await rebuild(store, until=history["at"]["v2"]), "batch")


async def test_the_text_form_reads_like_a_status_page(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """One block per app: release, formations, jobs, routes, resources, releases."""
    text = state_text(await state_document(await rebuild(store, until=history["at"]["running"])))
    assert f"State after event {history['at']['running']}" in text
    assert "APP shop" in text and "web=3 worker=1" in text
    assert "jobs       1 up" in text and "route      http shop.example.com/ -> shop-web" in text
