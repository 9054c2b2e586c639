"""Fixtures of the dashboard's browser tests: a served service, a browser, a signed-in page."""

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# The API tests' fixtures: the real app on the Postgres log and on the in-memory one.
from tests.controller.conftest import anonymous, client, settings  # noqa: F401
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, KEY, Service, have_browser
from tests.host.machine import reachable_dir


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir("evenflow-dashboard-") as path:
        yield path


@pytest.fixture
async def service(
    make_database: Callable[[], Awaitable[str]], root: Path
) -> AsyncIterator[Service]:
    served = Service(await make_database(), root)
    yield served
    served.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not have_browser():
        if os.environ.get("REQUIRE_BROWSER") == "1":  # CI: they must run
            pytest.fail("chromium and playwright are required (REQUIRE_BROWSER=1)")
        pytest.skip("the browser tests need chromium and playwright (make test installs them)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def sign_in(browser: Any, service: Service, key: str = KEY, **context: Any) -> Any:
    """A new page, signed in with `key`, on the apps page."""
    page = await (
        await browser.new_context(viewport={"width": 1280, "height": 800}, **context)
    ).new_page()
    await page.goto(service.url + "/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Apps").wait_for()
    return page
