"""Dashboard sessions over HTTP: the sign-in's cookie, the key it stands for (its scope, its
apps, its revocation, the actor it records), and the writes it refuses (cross-site,
unmarked, out of scope, expired or forged)."""

import asyncio
import time

from aiohttp.test_utils import TestClient

from controller.dashboard.sessions import COOKIE, HEADER, Session, issue, verify
from domain.keys import bootstrap_name
from tests.controller.conftest import AUTH_KEY
from tests.controller.test_scopes import make_key

MARK = {HEADER: "1"}
NAME = bootstrap_name(AUTH_KEY)


async def signed_in(anonymous: TestClient, key: str = AUTH_KEY) -> str:
    response = await anonymous.post("/dashboard/session", json={"key": key}, headers=MARK)
    assert response.status == 200, await response.text()
    return response.cookies[COOKIE].value


async def status_within(anonymous: TestClient, path: str, wanted: int, seconds: float) -> float:
    """Seconds until GET `path` answers `wanted` (polled), failing after `seconds`."""
    start = time.monotonic()
    async with asyncio.timeout(seconds):
        while (await anonymous.get(path)).status != wanted:
            await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_signing_in_sets_an_httponly_strict_cookie_and_a_wrong_key_is_a_401(anonymous):
    """The sign-in answers the scope and sets a HttpOnly, SameSite=Strict cookie; a wrong
    key gets Flynn's error document, and no cookie."""
    response = await anonymous.post("/dashboard/session", json={"key": AUTH_KEY}, headers=MARK)
    answer = await response.json()
    assert answer["scope"] == "admin" and answer["key"] == NAME and AUTH_KEY not in str(answer)
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and AUTH_KEY not in header
    wrong = await anonymous.post("/dashboard/session", json={"key": "nope"}, headers=MARK)
    assert wrong.status == 401 and (await wrong.json())["code"] == "unauthorized"
    assert COOKIE not in wrong.cookies


async def test_a_sign_in_without_the_dashboards_header_is_refused(anonymous):
    """Another site's form cannot sign a browser in: the header is required."""
    response = await anonymous.post("/dashboard/session", json={"key": AUTH_KEY})
    assert response.status == 403 and (await response.json())["code"] == "forbidden"


async def test_the_cookie_authenticates_reads_and_marked_writes_only(anonymous):
    """With the cookie alone a read passes; a write needs the header and this origin."""
    await signed_in(anonymous)
    assert (await anonymous.get("/apps")).status == 200
    assert (await anonymous.post("/apps", json={"name": "unmarked"})).status == 403
    foreign = {**MARK, "Origin": "https://elsewhere.example"}
    assert (await anonymous.post("/apps", json={"name": "foreign"}, headers=foreign)).status == 403
    made = await anonymous.post("/apps", json={"name": "marked"}, headers=MARK)
    assert made.status == 200 and (await made.json())["name"] == "marked"
    names = [app["name"] for app in await (await anonymous.get("/apps")).json()]
    assert names == ["marked"]


async def test_signing_out_ends_the_cookie(anonymous):
    """After DELETE /dashboard/session the browser holds no session: reads are a 401."""
    await signed_in(anonymous)
    assert (await anonymous.delete("/dashboard/session", headers=MARK)).status == 200
    assert (await anonymous.get("/apps")).status == 401


async def test_expired_forged_and_foreign_tokens_are_refused(anonymous):
    """A token past its expiry, one with its payload changed, and one signed with another
    key authenticate nothing."""
    now = int(time.time())
    expired = issue(Session("a", now - 1, NAME), AUTH_KEY)
    valid = issue(Session("b", now + 60, "reader"), AUTH_KEY)
    forged = valid.replace(
        valid.split(".")[1], issue(Session("b", now + 60, NAME), AUTH_KEY).split(".")[1]
    )
    foreign = issue(Session("c", now + 60, NAME), "another-key")
    for token in (expired, forged, foreign, "v1.garbage", ""):
        anonymous.session.cookie_jar.update_cookies({COOKIE: token})
        assert (await anonymous.get("/apps")).status == 401, token
    assert verify(valid, (AUTH_KEY,)) == Session("b", now + 60, "reader")


async def test_a_session_ends_when_its_key_is_no_longer_the_services(anonymous):
    """A well-signed session of a key since removed from AUTH_KEY authenticates nothing,
    while one of a key still there does."""
    now = int(time.time())
    gone = issue(Session("g", now + 60, bootstrap_name("a-removed-key")), AUTH_KEY)
    anonymous.session.cookie_jar.update_cookies({COOKIE: gone})
    assert (await anonymous.get("/apps")).status == 401
    anonymous.session.cookie_jar.update_cookies(
        {COOKIE: issue(Session("s", now + 60, NAME), AUTH_KEY)}
    )
    assert (await anonymous.get("/apps")).status == 200


async def test_a_read_keys_session_reads_and_may_not_write(client, anonymous):
    """A session signed in with a `read` key made through the API: its GETs pass, its
    writes are a 403 naming the scope, header or not."""
    secret = await make_key(client, "reader", "read")
    await signed_in(anonymous, secret)
    session = await (await anonymous.get("/dashboard/session")).json()
    assert (session["key"], session["scope"], session["apps"]) == ("reader", "read", None)
    assert (await anonymous.get("/apps")).status == 200
    refused = await anonymous.post("/apps", json={"name": "nope"}, headers=MARK)
    assert refused.status == 403 and "read" in (await refused.json())["message"]


async def test_a_stream_keys_session_reads_its_session_and_streams_only(client, anonymous):
    """A session of a `stream` key may read its own session and follow the event stream;
    any other read, the time machine included, is a 403."""
    await signed_in(anonymous, await make_key(client, "watcher", "stream"))
    assert (await (await anonymous.get("/dashboard/session")).json())["scope"] == "stream"
    stream = await anonymous.get("/events", headers={"Accept": "text/event-stream"})
    assert stream.status == 200
    stream.close()
    for path in ("/apps", "/dashboard/apps", "/dashboard/history/state"):
        assert (await anonymous.get(path)).status == 403, path


async def test_a_revoked_keys_session_is_refused_within_a_second(client, anonymous):
    """Revoking the key ends its sessions within 1 s."""
    secret = await make_key(client, "leaving", "read")
    await signed_in(anonymous, secret)
    assert (await anonymous.get("/apps")).status == 200
    assert (await client.delete("/keys/leaving")).status == 200
    assert await status_within(anonymous, "/apps", 401, 1.0) <= 1.0


async def test_an_app_limited_keys_session_sees_only_its_apps(client, anonymous):
    """A session of a key limited to one app: the apps at a glance and the events list hold
    that app only; the time machine needs ?app= one of its apps, else a 403."""
    mine = await (await client.post("/apps", json={"name": "mine"})).json()
    theirs = await (await client.post("/apps", json={"name": "theirs"})).json()
    await signed_in(anonymous, await make_key(client, "limited", "read", ["mine"]))
    session = await (await anonymous.get("/dashboard/session")).json()
    assert session["apps"] == [mine["id"]]
    glance = await (await anonymous.get("/dashboard/apps")).json()
    assert [a["id"] for a in glance] == [mine["id"]]
    events = await (await anonymous.get("/events", headers={"Accept": "application/json"})).json()
    assert events and {e.get("app") for e in events} == {mine["id"]}
    for path in (
        "/dashboard/history/state",
        "/dashboard/history/state?app=theirs",
        f"/dashboard/history/state?app={theirs['id']}",
        "/dashboard/history/state?app=nowhere",
        "/dashboard/history/changes?at_from=0",
        "/dashboard/history/changes?at_from=0&app=theirs",
    ):
        refused = await anonymous.get(path)
        assert refused.status == 403, path
        assert (await refused.json())["code"] == "forbidden"
    state = await (await anonymous.get("/dashboard/history/state?app=mine")).json()
    assert [a["app"]["name"] for a in state["apps"]] == ["mine"]
    changes = await (await anonymous.get("/dashboard/history/changes?at_from=0&app=mine")).json()
    assert changes["events"] and {e["app"] for e in changes["events"]} == {mine["id"]}


async def test_a_sessions_writes_record_its_key_as_their_actor(client, anonymous):
    """A write through a `deploy` key's session is refused outside the key's scope and, in
    it, recorded with the key's name as its actor."""
    await signed_in(anonymous, await make_key(client, "carol", "deploy"))
    made = await anonymous.post("/apps", json={"name": "by-carol"}, headers=MARK)
    assert made.status == 200
    position = made.headers["Evenflow-Event-Id"]
    envelope = await (await client.get(f"/events/{position}")).json()
    assert envelope["meta"]["actor"]["key"] == "carol"
    refused = await anonymous.post("/keys", json={"name": "x", "scope": "admin"}, headers=MARK)
    assert refused.status == 403


async def test_the_page_and_its_files_are_served_without_a_key_and_nothing_else(anonymous):
    """/ and the package's files are open, with a CSP forbidding framing; any other name is
    a 404, never a path on the host."""
    page = await anonymous.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    script = await anonymous.get("/dashboard/static/main.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    again = await anonymous.get(
        "/dashboard/static/main.js", headers={"If-None-Match": script.headers["ETag"]}
    )
    assert again.status == 304
    for name in ("..%2f..%2fpyproject.toml", "sessions.py", "missing.js", "x%2fmain.js"):
        assert (await anonymous.get(f"/dashboard/static/{name}")).status == 404, name
