"""One bad write never fails another: a write the database refuses, sent among 64 concurrent
ones, is answered alone with a 400 and the 63 others land; and what a write may store is
bounded at the edge, so that the database has nothing left to refuse for its size."""

import asyncio
import json
from importlib import resources
from typing import Any

import asyncpg
import pytest

from controller.app import create_app
from eventstore.postgres import PostgresEventStore
from service.settings import Settings
from tests.reliability.service import AUTH, JSON, KEY

#: Schemas whose limits another part of the service owns (job ids and reports).
NOT_HERE = {"job", "new_job"}


@pytest.mark.postgres
async def test_a_refused_write_among_64_concurrent_ones_is_a_400_and_the_63_others_land(
    aiohttp_client: Any, make_database: Any
):
    """PostgreSQL refuses one app's event (a constraint the service knows nothing of, as an
    index row too large once was): that write alone gets a validation error."""
    dsn = await make_database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER TABLE events ADD CHECK (data::text NOT LIKE '%poison-pill%')")
    finally:
        await conn.close()
    store = await PostgresEventStore.open(dsn)
    try:
        client = await aiohttp_client(create_app(Settings(auth_keys=(KEY,)), store=store))
        bodies: list[dict[str, Any]] = [{"name": f"app-{n}"} for n in range(64)]
        bodies[40]["meta"] = {"note": "poison-pill"}
        responses = await asyncio.gather(
            *[client.post("/apps", json=body, headers=AUTH) for body in bodies]
        )
        answers = [(r.status, await r.json()) for r in responses]
        poisoned = answers.pop(40)
        assert poisoned[0] == 400 and poisoned[1]["code"] == "validation_error", poisoned
        assert "refused" in poisoned[1]["message"] and poisoned[1]["retry"] is False
        assert [status for status, _ in answers] == [200] * 63
        listed = await (await client.get("/apps", headers=AUTH)).json()
        assert sorted(app["name"] for app in listed) == sorted(
            f"app-{n}" for n in range(64) if n != 40
        )
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("path", "body", "field", "limit"),
    [
        ("/apps", {"name": "a", "meta": {"k": "x" * 65537}}, "meta.k", 65536),
        ("/releases", {"env": {"K": "x" * 131073}}, "env.K", 131072),
        (
            "/releases",
            {"processes": {"web": {"cmd": ["x" * 131073]}}},
            "processes.web.cmd.0",
            131072,
        ),
        ("/artifacts", {"type": "docker", "uri": "https://x/" + "y" * 8192}, "uri", 8192),
        ("/apps/a/routes", {"type": "http", "domain": "d" * 254 + ".example"}, "domain", 253),
    ],
)
async def test_a_value_over_its_limit_is_a_400_naming_the_limit(
    api: Any, path: str, body: dict[str, Any], field: str, limit: int
):
    """Each limit is a validation error on the field, with the number in the message."""
    await api.post("/apps", json={"name": "a"}, headers=JSON)
    response = await api.post(path, json=body, headers=JSON)
    document = await response.json()
    assert response.status == 400, document
    assert document["detail"] == {"field": field}
    assert document["message"] == f"{field} String length must be shorter than {limit} characters."


async def test_a_map_key_over_its_limit_is_a_400(api: Any):
    """Meta and env keys are bounded too (256 characters is one too many)."""
    response = await api.post("/apps", json={"name": "a", "meta": {"k" * 256: "v"}}, headers=JSON)
    document = await response.json()
    assert response.status == 400 and document["detail"] == {"field": "meta"}, document


def _nodes(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every subschema of a schema document with where it is."""
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for key in ("properties", "patternProperties", "definitions"):
        for name, sub in node.get(key, {}).items():
            found += _nodes(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        found += _nodes(node.get(key), f"{path}.{key}")
    return found


def test_every_string_a_write_stores_has_a_length_limit():
    """In every request body schema, each string is bounded (a maxLength, an enum, or a
    pattern of bounded length), and so is each key of every map."""
    unbounded = []
    for entry in resources.files("schemas").iterdir():
        name = entry.name.removesuffix(".json")
        if not entry.name.endswith(".json") or name in NOT_HERE:
            continue
        for path, node in _nodes(json.loads(entry.read_text("utf-8")), name):
            types = node.get("type", [])
            if "string" in types and not (
                "maxLength" in node or "enum" in node or _bounded(node.get("pattern"))
            ):
                unbounded.append(path)
            if isinstance(node.get("additionalProperties"), dict):
                unbounded.append(f"{path} (its keys)")
    assert unbounded == []


def _bounded(pattern: str | None) -> bool:
    return pattern is not None and not any(c in pattern for c in "+*")
