"""`replay audit`: who did what and when, from a backup (no database) or the database;
JSON in a pipe, one line per event on a terminal."""

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from domain.keys import bootstrap_name
from replay.audit import audit_text
from tests.controller.conftest import AUTH_KEY
from tests.replay.scenario import run_cli


async def test_the_audit_of_a_backup_names_each_events_actor(
    client: TestClient, history: dict[str, Any], tmp_path: Path
):
    """Every event of the scenario's requests names the admin key and its request id; with
    --actor another key's events alone are listed; --app and --until narrow the list."""
    made = await (await client.post("/keys", json={"name": "ci", "scope": "deploy"})).json()
    ci = {"Authorization": aiohttp.encode_basic_auth("", made["secret"])}
    headers = ci | {"X-Request-Id": "from-ci"}
    updated = await client.post("/apps/shop/meta", json={"meta": {"by": "ci"}}, headers=headers)
    assert updated.status == 200
    backup = tmp_path / "b.tar"
    backup.write_bytes(await (await client.get("/backup")).read())

    code, out, err = await run_cli("replay", "audit", "--from", str(backup))
    assert code == 0, err
    entries = json.loads(out)["entries"]
    admin = bootstrap_name(AUTH_KEY)
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    by_key = {e["actor"]["key"] for e in entries if e["actor"] and "key" in e["actor"]}
    assert by_key == {admin, "ci"}
    assert made["secret"] not in out and AUTH_KEY not in out

    code, out, err = await run_cli("replay", "audit", "--from", str(backup), "--actor", "ci")
    assert code == 0, err
    (mine,) = json.loads(out)["entries"]
    assert mine["actor"]["request_id"] == "from-ci" and mine["app"] == history["app"]["id"]

    code, out, _ = await run_cli("replay", "audit", "--from", str(backup), "--app", "temp")
    assert {e["app"] for e in json.loads(out)["entries"]} == {history["temp"]["id"]}
    code, out, _ = await run_cli(
        "replay", "audit", "--from", str(backup), "--until", "2000-01-01T00:00:00Z"
    )
    assert code == 0 and json.loads(out)["entries"] == []
    code, _, err = await run_cli("replay", "audit", "--from", str(backup), "--app", "ghost")
    assert code == 1 and "no app 'ghost'" in err


def test_the_audit_text_is_one_escaped_line_per_event():
    """On a terminal: a count, then one line per event with who, from where and which
    request; what a client sent (a user agent, a request id) cannot break the line."""
    entries = [
        {"id": 1, "created_at": "2026-01-01T00:00:00Z", "summary": "app created",
         "actor": {"key": "ci", "address": "10.0.0.1", "request_id": "r\x1b[2J\nx"}},
        {"id": 2, "created_at": "2026-01-01T00:00:01Z", "summary": "job up",
         "actor": {"component": "scheduler", "causation_id": 1}},
        {"id": 3, "created_at": "2026-01-01T00:00:02Z", "summary": "old", "actor": None},
    ]  # fmt: skip
    lines = audit_text(entries).splitlines()
    assert lines[0] == "3 events" and len(lines) == 5
    assert "ci @10.0.0.1 [r" in lines[2] and "\x1b" not in lines[2] and "\n" not in lines[2]
    assert "scheduler (after event 1)" in lines[3]
    assert lines[4].split()[:2] == ["3", "2026-01-01T00:00:02Z"] and " - " in lines[4]
