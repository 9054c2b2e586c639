"""Writes sent with an Idempotency-Key: applied at most once; a retry gets the first answer;
the same key for another request, or a malformed key, is refused with an error document."""

from typing import Any

import pytest

from tests.reliability.service import JSON


async def events_of(api: Any, object_type: str) -> list[dict[str, Any]]:
    response = await api.get(
        "/events", params={"object_types": object_type}, headers={"Accept": "application/json"}
    )
    assert response.status == 200
    return list(await response.json())


async def release_ids(api: Any, count: int) -> list[str]:
    artifact = await (
        await api.post("/artifacts", json={"type": "docker", "uri": "https://x/i"}, headers=JSON)
    ).json()
    ids = []
    for _ in range(count):
        body = {"artifact": artifact["id"], "processes": {"web": {"cmd": ["serve"]}}}
        ids.append((await (await api.post("/releases", json=body, headers=JSON)).json())["id"])
    return ids


async def test_a_retried_write_is_answered_as_the_first_and_applied_once(api: Any):
    """A meta update sent twice with one key: two equal 200s, one app event in the log."""
    await api.post("/apps", json={"name": "hello"}, headers=JSON)
    headers = JSON | {"Idempotency-Key": "update-1"}
    first = await api.post("/apps/hello/meta", json={"meta": {"a": "1"}}, headers=headers)
    again = await api.post("/apps/hello/meta", json={"meta": {"a": "1"}}, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert await again.json() == await first.json()
    assert [e["data"]["meta"] for e in await events_of(api, "app")] == [{"a": "1"}, {}]


async def test_a_retry_is_not_applied_again_after_a_later_write(api: Any):
    """Release R1 set with a key, then R2 without: the retry of the first changes nothing."""
    await api.post("/apps", json={"name": "hello"}, headers=JSON)
    r1, r2 = await release_ids(api, 2)
    keyed = JSON | {"Idempotency-Key": "set-r1"}
    first = await api.put("/apps/hello/release", json={"id": r1}, headers=keyed)
    assert first.status == 200
    assert (await api.put("/apps/hello/release", json={"id": r2}, headers=JSON)).status == 200
    retry = await api.put("/apps/hello/release", json={"id": r1}, headers=keyed)
    assert retry.status == 200 and await retry.json() == await first.json()
    assert (await (await api.get("/apps/hello")).json())["release"] == r2
    assert len(await events_of(api, "app_release")) == 2


async def test_the_same_key_for_another_request_is_a_409(api: Any):
    """A key names one request (method, path, body): another body with it is refused."""
    await api.post("/apps", json={"name": "hello"}, headers=JSON)
    headers = JSON | {"Idempotency-Key": "k"}
    assert (
        await api.post("/apps/hello/meta", json={"meta": {"a": "1"}}, headers=headers)
    ).status == 200
    other = await api.post("/apps/hello/meta", json={"meta": {"a": "2"}}, headers=headers)
    document = await other.json()
    assert other.status == 409 and document["code"] == "conflict", document
    assert document["retry"] is False and document["detail"] == {"field": "Idempotency-Key"}
    assert (await (await api.get("/apps/hello")).json())["meta"] == {"a": "1"}


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
async def test_a_malformed_idempotency_key_is_a_400(api: Any, key: str):
    """A key is 1 to 255 printable ASCII characters; anything else is refused, unapplied."""
    headers = JSON | {"Idempotency-Key": key.encode().decode("latin-1")}
    response = await api.post("/apps", json={"name": "hello"}, headers=headers)
    document = await response.json()
    assert response.status == 400 and document["code"] == "validation_error", document
    assert document["detail"] == {"field": "Idempotency-Key"}
    assert (await api.get("/apps/hello")).status == 404


async def test_two_idempotency_keys_on_one_request_are_a_400(api: Any):
    """One key per request: two headers are refused rather than one picked."""
    headers = [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "a"),
        ("Idempotency-Key", "b"),
    ]
    response = await api.post("/apps", data=b'{"name": "hello"}', headers=headers)
    assert response.status == 400 and (await response.json())["detail"] == {
        "field": "Idempotency-Key"
    }
