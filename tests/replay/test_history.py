"""`replay history`: an app's events, found by name or id, summarised one per line."""

from typing import Any

from domain.events import ReleaseDeleted
from eventstore.memory import InMemoryEventStore
from replay.history import app_events, find_app_id, history_text, summary, timeline


async def test_an_apps_timeline_lists_its_events_in_order_with_summaries(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """Each entry is Flynn's envelope plus the stored type and a few readable words."""
    app_id, name = await find_app_id(store, "shop") or ("", "")
    assert (app_id, name) == (history["app"]["id"], "shop")
    entries = timeline(await app_events(store, app_id))
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert all(e["app"] == app_id for e in entries)
    r1 = history["releases"][0]["id"][:8]
    summaries = [e["summary"] for e in entries]
    assert summaries[0] == 'app "shop" created (strategy all-at-once)'
    assert f"release {r1} scaled to web=1" in summaries
    assert f"release {r1} set as current" in summaries
    assert "route http shop.example.com/ -> shop-web created" in summaries
    assert any(s.startswith("job web ") and s.endswith(" up") for s in summaries)
    assert summaries[-1].startswith("app updated: strategy all-at-once, timeout 30s, meta team=b")
    text = history_text(app_id, name, entries)
    assert text.splitlines()[0] == f"History of app shop ({app_id}): {len(entries)} events"


async def test_a_deleted_app_is_found_by_name_and_by_id(
    store: InMemoryEventStore, history: dict[str, Any]
):
    """The log keeps a deleted app's history; its last event is the deletion."""
    temp = history["temp"]["id"]
    assert await find_app_id(store, "temp") == (temp, "temp")
    assert await find_app_id(store, temp) == (temp, "temp")
    entries = timeline(await app_events(store, temp))
    assert entries[-1]["summary"] == "app deleted, with 1 route(s), 0 release(s) and 0 resource(s)"
    assert await find_app_id(store, "never") is None


def test_a_release_deletion_says_whether_other_apps_keep_the_release():
    """A release deletion names the release, and the apps that still use it if any."""
    release = "12345678-0000-4000-8000-000000000000"
    assert summary(ReleaseDeleted("a", release)) == "release 12345678 deleted"
    kept = summary(ReleaseDeleted("a", release, ("b", "c")))
    assert kept == "release 12345678 deleted (kept for 2 other app(s))"
