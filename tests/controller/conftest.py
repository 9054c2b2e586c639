"""API test fixtures: the real application on the Postgres log (and on the in-memory one)."""

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from controller.app import create_app
from eventstore.store import EventStore
from service.settings import Settings

AUTH_KEY = "test-key"
AUTH_HEADERS = {"Authorization": aiohttp.encode_basic_auth("", AUTH_KEY)}
DOMAIN = "evenflow.test"


@pytest.fixture
def settings() -> Settings:
    return Settings(auth_keys=(AUTH_KEY, "second-key"), default_route_domain=DOMAIN)


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, store: EventStore
) -> TestClient:
    """A client of the service, authenticated with the first key."""
    app = create_app(settings, store=store)
    return await aiohttp_client(app, headers=AUTH_HEADERS)


@pytest.fixture
async def anonymous(
    aiohttp_client: AiohttpClient, settings: Settings, store: EventStore
) -> TestClient:
    """A client without credentials."""
    return await aiohttp_client(create_app(settings, store=store))
