"""Replay fixtures: a service on the in-memory log with a known history."""

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from service.settings import Settings
from tests.controller.conftest import AUTH_HEADERS, AUTH_KEY, DOMAIN
from tests.replay.scenario import build_history


@pytest.fixture
def settings() -> Settings:
    return Settings(auth_keys=(AUTH_KEY,), default_route_domain=DOMAIN)


@pytest.fixture
async def store() -> Any:
    log = InMemoryEventStore()
    yield log
    await log.close()


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, store: InMemoryEventStore
) -> TestClient:
    return await aiohttp_client(create_app(settings, store=store), headers=AUTH_HEADERS)


@pytest.fixture
async def history(client: TestClient) -> dict[str, Any]:
    """build_history's ids and step marks, on `store`."""
    return await build_history(client)
