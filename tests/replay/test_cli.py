"""`python -m controller replay ... --from FILE`: JSON when piped, exit status 1 when refused."""

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.controller.conftest import AUTH_KEY
from tests.replay.scenario import run_cli


async def backup_of(client: TestClient, tmp_path: Path) -> Path:
    path = tmp_path / "b.tar"
    path.write_bytes(await (await client.get("/backup")).read())
    return path


async def test_state_and_history_read_a_backup_and_print_json_when_piped(
    client: TestClient, history: dict[str, Any], tmp_path: Path
):
    """No database needed: the backup is the log."""
    path = await backup_of(client, tmp_path)
    at = history["at"]["v1"]
    code, out, err = await run_cli(
        "replay", "state", "--from", str(path), "--at", str(at), "--app", "shop"
    )
    assert code == 0, err
    (view,) = json.loads(out)["apps"]
    assert view["app"]["release"] == history["releases"][0]["id"]
    code, out, err = await run_cli("replay", "history", "--from", str(path), "--app", "shop")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["app"] == {"id": history["app"]["id"], "name": "shop"}
    assert doc["events"][0]["summary"] == 'app "shop" created (strategy all-at-once)'


async def test_verify_of_a_backup_checks_it_whole(
    client: TestClient, history: dict[str, Any], tmp_path: Path
):
    """An intact backup verifies (exit 0); a damaged one is refused (exit 1) with the reason."""
    path = await backup_of(client, tmp_path)
    code, out, _ = await run_cli("replay", "verify", "--from", str(path))
    assert code == 0 and json.loads(out)["ok"] is True
    path.write_bytes(path.read_bytes().replace(b'"team":"a"', b'"team":"q"', 1))
    code, _, err = await run_cli("replay", "verify", "--from", str(path))
    assert code == 1 and "does not match" in err


async def test_an_unknown_app_is_refused_with_a_message(
    client: TestClient, history: dict[str, Any], tmp_path: Path
):
    """Exit status 1 and one line on stderr."""
    path = await backup_of(client, tmp_path)
    code, out, err = await run_cli("replay", "history", "--from", str(path), "--app", "ghost")
    assert (code, out) == (1, "")
    assert err == "evenflow: no app 'ghost' in the log\n"


async def test_state_beyond_the_last_event_is_refused(
    client: TestClient, history: dict[str, Any], tmp_path: Path
):
    """`--at N` past the log's end is an error (status 1), not the state at its end."""
    path = await backup_of(client, tmp_path)
    end = history["at"]["end"]
    code, out, err = await run_cli("replay", "state", "--from", str(path), "--at", str(end + 1))
    assert (code, out) == (1, "")
    assert err == f"evenflow: --at {end + 1} is beyond the log's last event, {end}\n"
    code, _, err = await run_cli("replay", "state", "--from", str(path), "--at", str(end))
    assert code == 0, err


NO_KEY: dict[str, str | None] = {"AUTH_KEY": None, "EVENFLOW_DATA_DIR": None}


async def test_verify_finds_the_service_key_as_the_service_does(
    client: TestClient, history: dict[str, Any], tmp_path: Path
):
    """Without --key: AUTH_KEY (its first key), else EVENFLOW_DATA_DIR/auth_key; neither is
    one line and status 1, a wrong one too."""
    path = await backup_of(client, tmp_path)
    verify = ("replay", "verify", "--from", str(path), "--url", str(client.make_url("/")))
    code, out, err = await run_cli(*verify, env=NO_KEY | {"AUTH_KEY": f"{AUTH_KEY},other"})
    assert code == 0 and json.loads(out)["ok"] is True, err
    data = tmp_path / "data"
    data.mkdir()
    (data / "auth_key").write_text(AUTH_KEY + "\n")
    code, out, err = await run_cli(*verify, env=NO_KEY | {"EVENFLOW_DATA_DIR": str(data)})
    assert code == 0 and json.loads(out)["ok"] is True, err
    code, out, err = await run_cli(*verify, env=NO_KEY | {"EVENFLOW_DATA_DIR": str(tmp_path)})
    assert (code, out) == (1, "")
    assert err.startswith("evenflow: no API key for http://127.0.0.1:") and err.count("\n") == 1
    code, out, err = await run_cli(*verify, env=NO_KEY | {"AUTH_KEY": "wrong-key"})
    assert (code, out) == (1, "")
    assert err.endswith("refused the key (401 Unauthorized)\n") and err.count("\n") == 1
