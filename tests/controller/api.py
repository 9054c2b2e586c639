"""Small helpers for the API tests: reading answers, posting, creating objects."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.controller.provider_server import ProviderServer

JSON_ACCEPT = {"Accept": "application/json"}


async def events_of(client: TestClient, **query: str) -> list[dict[str, Any]]:
    """GET /events as a list (newest first)."""
    response = await client.get("/events", params=query, headers=JSON_ACCEPT)
    assert response.status == 200
    answer: list[dict[str, Any]] = await response.json()
    return answer


async def ok_json(response: Any, status: int = 200) -> Any:
    """The body of a response that must have `status`."""
    assert response.status == status, await response.text()
    return await response.json()


def flynn_error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """Flynn's error document (pkg/httphelper JSONError) for an error that is not retryable."""
    document: dict[str, Any] = {"code": code, "message": message, "retry": False}
    if field is not None:
        document["detail"] = {"field": field}
    return document


async def post(client: TestClient, path: str, body: object, status: int = 200) -> dict[str, Any]:
    """POST `body` as JSON to `path`; the answer, which must have `status`."""
    answer: dict[str, Any] = await ok_json(await client.post(path, json=body), status)
    return answer


async def create_app(client: TestClient, name: str, **body: object) -> dict[str, Any]:
    answer: dict[str, Any] = await ok_json(await client.post("/apps", json={"name": name, **body}))
    return answer


async def create_provider(
    client: TestClient, server: ProviderServer, name: str = "postgres"
) -> dict[str, Any]:
    answer: dict[str, Any] = await ok_json(
        await client.post("/providers", json={"name": name, "url": server.url})
    )
    return answer


async def provision(
    client: TestClient, provider: str, apps: list[str] | None = None, config: object = None
) -> dict[str, Any]:
    body = {"apps": apps, "config": config}
    answer: dict[str, Any] = await ok_json(
        await client.post(f"/providers/{provider}/resources", json=body)
    )
    return answer
