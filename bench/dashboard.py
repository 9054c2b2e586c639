"""The dashboard suite: the apps page with 1,000 apps, and the feed at 200 events/s.

Driven in Debian's chromium through Playwright, signed in with a session cookie. The apps
page's time to interactive is from navigation to its table holding every app (its first
answer rendered and the live updates running); the feed's row counts the events it
rendered against those appended at a fixed rate, and how long after the last append it
held them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from datetime import UTC, datetime
from typing import Any

import attrs

from bench import scratch_database, server
from bench.report import Row, Target
from bench.service import KEY, evenflow
from controller.dashboard.sessions import COOKIE, Session, issue
from domain.codec import encode
from domain.events import AppCreated, AppUpdated
from domain.ids import new_id
from domain.keys import bootstrap_name
from domain.objects import App
from eventstore.postgres import PostgresEventStore

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
APPS = 1_000
RATE = 200  # events per second
BATCH = 10  # events per append


def _app(n: int) -> App:
    now = datetime.now(UTC)
    return App(id=new_id(), name=f"app-{n}", created_at=now, updated_at=now)


async def _page(browser: Any, url: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    token = issue(Session("bench", int(time.time()) + 3600, bootstrap_name(KEY)), KEY)
    await context.add_cookies([{"name": COOKIE, "value": token, "url": url}])
    return await context.new_page()


async def apps_page(browser: Any, url: str) -> float:
    """Milliseconds from navigation until the apps page shows every app."""
    page = await _page(browser, url)
    await page.goto(url + "/#/")
    # Functions, not expressions: the page's CSP forbids the eval an expression needs.
    await page.wait_for_function(
        "n => document.querySelectorAll('tr[data-app]').length >= n", arg=APPS
    )
    ready = float(await page.evaluate("window.evenflow.appsReady"))
    await page.context.close()
    return ready


async def feed(
    browser: Any, url: str, store: PostgresEventStore, seconds: float
) -> dict[str, float]:
    """Append RATE events a second for `seconds` while the feed is open; what it rendered."""
    app = _app(APPS)
    await store.append([encode(AppCreated(app))])
    page = await _page(browser, url)
    await page.goto(url + "/#/feed")
    await page.wait_for_function("() => window.evenflow.feedLastId > 0")
    start = float(await page.evaluate("window.evenflow.feedRendered"))
    appended, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        batch = [encode(AppUpdated(attrs.evolve(app, meta={"n": str(appended + k)})))
                 for k in range(BATCH)]  # fmt: skip
        last = (await store.append(batch))[-1].id
        appended += BATCH
        await asyncio.sleep(max(0.0, appended / RATE - (time.perf_counter() - began)))
    written = time.perf_counter()
    await page.wait_for_function(
        "last => window.evenflow.feedLastId >= last", arg=last, timeout=60_000
    )
    lag = time.perf_counter() - written
    rendered = float(await page.evaluate("window.evenflow.feedRendered")) - start
    await page.context.close()
    return {"rendered": rendered, "appended": appended, "rate": appended / elapsed, "lag": lag}


async def _measure(quick: bool) -> list[Row]:
    from playwright.async_api import async_playwright

    with server() as (admin_dsn, _, _):
        async with scratch_database(admin_dsn) as dsn:
            with contextlib.ExitStack() as stack:
                # evenflow() waits for the service with an event loop of its own.
                target = await asyncio.to_thread(stack.enter_context, evenflow(dsn))
                store = await PostgresEventStore.open(dsn)
                try:
                    await store.append([encode(AppCreated(_app(n))) for n in range(APPS)])
                    async with async_playwright() as p:
                        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                        runs = 2 if quick else 5
                        loads = [await apps_page(browser, target.url) for _ in range(runs)]
                        fed = await feed(browser, target.url, store, 10.0 if quick else 60.0)
                        await browser.close()
                finally:
                    await store.close()
    return [
        Row("apps page with 1,000 apps: interactive", "ms", tuple(loads),
            target=Target("value", "<=", 1000.0)),
        Row(f"feed at {RATE} events/s: events rendered / appended", "ratio",
            (fed["rendered"] / fed["appended"],), target=Target("value", ">=", 1.0),
            detail={"appended": fed["appended"], "events/s": fed["rate"],
                    "caught up after last append s": fed["lag"]}),
    ]  # fmt: skip


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError("the dashboard suite needs chromium (make bench installs it)")
    return asyncio.run(_measure(quick)), {"apps": APPS, "rate": RATE}
