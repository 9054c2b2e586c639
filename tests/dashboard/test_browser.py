"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright) against
`serve` in a process of its own, with the local scheduler running real jobs."""

from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from controller.dashboard.sessions import COOKIE
from tests.dashboard.actors import app_updated, append_as
from tests.dashboard.browser import KEY, Service, call, make_key, position, screenshot
from tests.dashboard.conftest import sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WAIT = 20_000  # ms: jobs start as processes on a busy machine
#: A write sent from a page with the headers given: the status it got.
FORGED = """headers => fetch('/apps', {method: 'POST', body: '{"name": "forged"}',
    headers: {...headers, 'Content-Type': 'application/json'}}).then(r => r.status)"""


async def app_with_release(
    http: aiohttp.ClientSession, service: Service, name: str, env: Any
) -> Any:
    """An app whose current release runs a `worker` from a `file` artifact."""
    folder = service.artifacts / f"{name}-app"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    (folder / "README").write_text("a worker\n")
    app = await call(http, service, "POST", "/apps", {"name": name})
    artifact = await call(
        http, service, "POST", "/artifacts", {"type": "file", "uri": f"file://{folder}"}
    )
    release = await new_release(http, service, artifact["id"], env)
    await call(http, service, "PUT", f"/apps/{app['id']}/release", {"id": release["id"]})
    return app, artifact, release


async def new_release(
    http: aiohttp.ClientSession, service: Service, artifact: str, env: Any
) -> Any:
    worker = {"cmd": ["sh", "-c", "while true; do echo working; sleep 1; done"]}
    body = {"artifact": artifact, "env": env, "processes": {"worker": worker}}
    return await call(http, service, "POST", "/releases", body)


async def test_signing_in_shows_the_apps_and_an_app_made_through_the_api_appears(
    browser, service, http
):
    """After sign-in the apps page is live: an app created with the API shows up without a
    reload, and the key is nowhere in the page's storage or URL."""
    page = await sign_in(browser, service)
    await call(http, service, "POST", "/apps", {"name": "appears"})
    await expect(page.locator("tr[data-app=appears]")).to_be_visible(timeout=WAIT)
    assert KEY not in page.url
    stored = await page.evaluate("JSON.stringify([localStorage, sessionStorage, document.cookie])")
    assert KEY not in stored and COOKIE not in stored  # HttpOnly: no script reads it
    await screenshot(page, "apps")


async def test_scaling_through_the_page_brings_jobs_up_and_a_deployment_shows_live(
    browser, service, http
):
    """Scaling with the form starts real jobs, shown up as they come; a deployment made with
    the API shows its progress and completion; the log tail shows the jobs' output."""
    app, artifact, _ = await app_with_release(http, service, "scaled", {"GREETING": "hello"})
    page = await sign_in(browser, service)
    await page.get_by_role("link", name="scaled").click()
    await page.get_by_label("worker processes").fill("2")
    await page.get_by_role("button", name="Scale").click()
    await expect(page.locator("#jobs .state-up")).to_have_count(2, timeout=WAIT)
    await expect(page.locator("pre.log")).to_contain_text("working", timeout=WAIT)
    release = await new_release(http, service, artifact["id"], {"GREETING": "bonjour"})
    deployment = await call(
        http, service, "POST", f"/apps/{app['id']}/deploy", {"id": release["id"]}
    )
    row = page.locator(f"tr[data-deployment='{deployment['id']}']")
    await expect(row).to_be_visible(timeout=WAIT)
    await expect(row.locator(".progress")).to_contain_text("worker", timeout=WAIT)
    await expect(row.locator(".state-complete")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#release")).to_contain_text("bonjour")
    await screenshot(page, "app")


async def test_the_time_machine_shows_a_releases_env_before_and_after_and_who(
    browser, service, http
):
    """Comparing the points before and after a release change, made by a `deploy` key named
    alice, shows the env's old and new value and alice as who made it."""
    app, artifact, _ = await app_with_release(http, service, "timed", {"GREETING": "hello"})
    alice = await make_key(http, service, "alice", "deploy")
    before = await position(http, service)
    second = await new_release(http, service, artifact["id"], {"GREETING": "bonjour"})
    body = {"id": second["id"]}
    await call(http, service, "PUT", f"/apps/{app['id']}/release", body, key=alice)
    page = await sign_in(browser, service)
    await page.get_by_role("link", name="Time machine").click()
    await page.get_by_label("App").fill("timed")
    await page.get_by_label("From").fill(str(before))
    await page.get_by_role("button", name="Compare").click()
    env = page.locator(".change-env")
    await expect(env).to_contain_text("GREETING", timeout=WAIT)
    await expect(env.locator(".diff-before")).to_have_text("hello")
    await expect(env.locator(".diff-after")).to_have_text("bonjour")
    await expect(env.locator(".who")).to_have_text("alice")
    await screenshot(page, "time-machine")
    await page.get_by_label("At / to").fill(str(before))
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator(".app-state")).to_contain_text("hello", timeout=WAIT)


async def test_the_feed_filters_events_by_actor(browser, service, http):
    """Changes made with two keys made through the API show each key's name as who made
    them, and the actor filter keeps only one key's events."""
    app = await call(http, service, "POST", "/apps", {"name": "audited"})
    alice = await make_key(http, service, "alice", "deploy")
    bob = await make_key(http, service, "bob", "deploy")
    page = await sign_in(browser, service)
    await page.get_by_role("link", name="Events").click()
    await expect(page.locator("tr[data-event]").first).to_be_visible(timeout=WAIT)
    path = f"/apps/{app['id']}"
    await call(http, service, "POST", path, {"meta": {"owner": "alice"}}, key=alice)
    by_alice = await position(http, service)
    await call(http, service, "POST", path, {"meta": {"owner": "bob"}}, key=bob)
    by_bob = await position(http, service)
    await expect(page.locator(f"tr[data-event='{by_bob}'] .who")).to_have_text("bob", timeout=WAIT)
    actors = page.get_by_label("Actor").locator("option")
    await expect(actors.filter(has_text="alice")).to_have_count(1)
    await expect(actors.filter(has_text="bob")).to_have_count(1)
    await page.get_by_label("Actor").select_option("alice")
    await expect(page.locator("tr[data-event]")).to_have_count(1)
    await expect(page.locator(f"tr[data-event='{by_alice}'] .who")).to_have_text("alice")
    await screenshot(page, "feed")


async def test_a_read_only_session_has_no_actions_and_its_forged_write_is_refused(
    browser, service, http
):
    """Signed in with a `read` key made through the API, the formation shows but no control
    to change it; a write sent anyway (with the dashboard's header) is a 403, and so is an
    admin session's write without that header."""
    await app_with_release(http, service, "readonly", {})
    reader = await make_key(http, service, "reader", "read")
    page = await sign_in(browser, service, reader)
    await expect(page.locator("#scope")).to_have_text("reader (read)")
    await page.get_by_role("link", name="readonly").click()
    await expect(page.locator("#formation")).to_contain_text("worker=0", timeout=WAIT)
    assert await page.get_by_role("button", name="Scale").count() == 0
    assert await page.evaluate(FORGED, {"X-Evenflow-Dashboard": "1"}) == 403
    admin = await sign_in(browser, service)
    assert await admin.evaluate(FORGED, {}) == 403
    apps = await call(http, service, "GET", "/apps")
    assert "forged" not in {a["name"] for a in apps}


async def test_a_stream_session_sees_the_live_feed_only(browser, service, http):
    """Signed in with a `stream` key made through the API, the page is the event feed, which
    shows new events as they come, with no action."""
    watcher = await make_key(http, service, "watcher", "stream")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(service.url + "/")
    await page.get_by_label("API key").fill(watcher)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_have_text("live", timeout=WAIT)
    await expect(page.locator("#scope")).to_have_text("watcher (stream)")
    await call(http, service, "POST", "/apps", {"name": "streamed"})
    last = await position(http, service)
    await expect(page.locator(f"tr[data-event='{last}']")).to_be_visible(timeout=WAIT)
    assert await page.get_by_role("button", name="Scale").count() == 0


async def test_an_app_limited_key_sees_only_its_apps_and_their_events(browser, service, http):
    """Signed in with a key limited to one app, the apps page lists that app only and the
    feed shows its events, not another app's, live included."""
    mine = await call(http, service, "POST", "/apps", {"name": "mine"})
    theirs = await call(http, service, "POST", "/apps", {"name": "theirs"})
    limited = await make_key(http, service, "limited", "read", ["mine"])
    page = await sign_in(browser, service, limited)
    await expect(page.locator("tr[data-app=mine]")).to_be_visible(timeout=WAIT)
    await expect(page.locator("tr[data-app]")).to_have_count(1)
    await page.get_by_role("link", name="Events").click()
    await call(http, service, "POST", f"/apps/{theirs['id']}", {"meta": {"n": "1"}})
    hidden = await position(http, service)
    await call(http, service, "POST", f"/apps/{mine['id']}", {"meta": {"n": "2"}})
    shown = await position(http, service)
    await expect(page.locator(f"tr[data-event='{shown}']")).to_be_visible(timeout=WAIT)
    assert await page.locator(f"tr[data-event='{hidden}']").count() == 0
    assert "theirs" not in await page.locator("main").inner_text()


async def test_the_stream_resumes_after_a_restart_and_misses_no_event(browser, service, http):
    """Events appended while the service is down and after it is back all reach the feed,
    each once."""
    app = await call(http, service, "POST", "/apps", {"name": "restarted"})
    page = await sign_in(browser, service)
    await page.get_by_role("link", name="Events").click()
    await expect(page.locator("#connection")).to_have_text("live", timeout=WAIT)
    service.stop()
    database = service.env["DATABASE_URL"]
    missed = [
        await append_as(database, "offline", app_updated(app, {"n": str(n)})) for n in range(3)
    ]
    await expect(page.locator("#connection")).to_have_text("reconnecting…", timeout=WAIT)
    service.start()
    await call(http, service, "POST", f"/apps/{app['id']}", {"meta": {"n": "after"}})
    last = await position(http, service)
    assert last > missed[-1]
    await expect(page.locator(f"tr[data-event='{last}']")).to_be_visible(timeout=WAIT)
    for event_id in missed:
        await expect(page.locator(f"tr[data-event='{event_id}']")).to_have_count(1)
    ids = await page.locator("tr[data-event]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.event))"
    )
    assert len(ids) == len(set(ids)) and ids == sorted(ids, reverse=True)
    await expect(page.locator("#connection")).to_have_text("live")
