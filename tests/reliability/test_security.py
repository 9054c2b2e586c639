"""No one gets in without a key: every route but Flynn's exemptions wants one, keys are
found by their hash and can be rotated, and they are never logged nor echoed. Outbound
calls carry none of our credentials and cannot be pointed back at the service. HTTPS is
served directly when given a certificate."""

import asyncio
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from controller.access_log import redact
from controller.app import create_app
from controller.auth import Authenticator
from controller.urls import URLS
from domain.keys import bootstrap_name
from eventstore.memory import InMemoryEventStore
from projections.state import State
from service.settings import Settings
from tests.processes import ROOT
from tests.reliability.service import AUTH, JSON, KEY, OLD_KEY, LocalProvider, Service

README = (ROOT / "README.md").read_text()
OPEN_PATHS = {url.path for url in URLS if url.open}
TLS = ROOT / "tests" / "fixtures" / "tls"


@pytest.fixture
async def anonymous(aiohttp_client: AiohttpClient) -> TestClient:
    app = create_app(Settings(auth_keys=(KEY, OLD_KEY)), store=InMemoryEventStore())
    return await aiohttp_client(app)


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "x", path)


def every_route(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route, HEAD included."""
    found = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        found.append((route.method, info.get("path") or info["formatter"]))
    return found


# -- keys ------------------------------------------------------------------------------------


async def test_every_route_but_the_documented_exemptions_wants_a_key(anonymous: TestClient):
    """Without a key, every route of the table answers Flynn's bare 401, except /ping and
    /ca-cert, which are listed in the README (and in the OpenAPI document) as open."""
    table = every_route(anonymous)
    assert len(table) > 60
    open_routes = set()
    for method, path in table:
        response = await anonymous.request(method, concrete(path))
        if response.status != 401:
            open_routes.add(path)
            continue
        assert await response.read() == b"" and "WWW-Authenticate" not in response.headers
    assert open_routes == OPEN_PATHS == {"/ping", "/ca-cert"}
    section = README[README.index("## Security and limits") :]
    assert all(f"`GET {path}`" in section for path in OPEN_PATHS)


@pytest.mark.parametrize(
    ("headers", "open_paths"),
    [
        ({"Authorization": aiohttp.encode_basic_auth("", "wrong")}, {"/ping"}),
        # No password at all (Flynn lets those fetch /ca-cert): the key as the user name,
        # another scheme, a broken header, a header Flynn does not read.
        ({"Authorization": aiohttp.encode_basic_auth(KEY, "")}, OPEN_PATHS),
        ({"Authorization": f"Bearer {KEY}"}, OPEN_PATHS),
        ({"Authorization": "Basic !!!"}, OPEN_PATHS),
        ({"Auth-Key": KEY}, OPEN_PATHS),
    ],
)
async def test_a_wrong_or_misplaced_key_is_a_401_on_every_route_but_the_open_ones(
    anonymous: TestClient, headers: dict[str, str], open_paths: set[str]
):
    """A wrong password is refused even on /ca-cert; a key anywhere but the password is none."""
    for method, path in every_route(anonymous):
        response = await anonymous.request(method, concrete(path), headers=headers)
        assert (response.status == 401) != (path in open_paths), (method, path)


async def test_the_key_parameter_works_only_for_streams_and_backups(anonymous: TestClient):
    """?key= authenticates a GET of an event stream or a backup, nothing else."""
    assert (await anonymous.get(f"/apps?key={KEY}")).status == 401
    assert (await anonymous.post(f"/apps?key={KEY}", json={"name": "x"})).status == 401
    assert (await anonymous.get(f"/backup?key={KEY}")).status == 200
    stream = await anonymous.get(f"/events?key={KEY}", headers={"Accept": "text/event-stream"})
    assert stream.status == 200
    stream.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/apps"),
        ("PUT", "/apps/x/release"),
        ("DELETE", "/apps/x"),
        ("POST", "/providers"),
        ("POST", "/backup"),
        ("GET", "/apps"),
        ("GET", "/apps/x/jobs"),
        ("GET", "/events/1"),
        ("GET", "/apps/x/log/extra"),
    ],
)
async def test_the_key_parameter_is_no_key_for_writes_nor_other_reads(
    anonymous: TestClient, method: str, path: str
):
    """Even with `Accept: text/event-stream` (Flynn then takes ?key= on any request), a
    write, or a read that is not a stream or a backup, is a 401 with only ?key=."""
    headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
    response = await anonymous.request(method, f"{path}?key={KEY}", headers=headers, data=b"{}")
    assert response.status == 401


@pytest.mark.parametrize(
    "path", ["/events?", "/formations?since=2000-01-01T00:00:00Z&", "/apps/x/log?"]
)
async def test_every_stream_takes_the_key_parameter(anonymous: TestClient, path: str):
    """The event, formation and log streams all take ?key= (a browser's EventSource)."""
    assert (await anonymous.post("/apps", json={"name": "x"}, headers=AUTH)).status == 200
    stream = await anonymous.get(f"{path}key={KEY}", headers={"Accept": "text/event-stream"})
    assert stream.status == 200, path
    stream.close()


async def test_every_configured_key_works_and_others_do_not(aiohttp_client: Any):
    """AUTH_KEY holds several keys for rotation: each works; a key removed from it does not."""
    store = InMemoryEventStore()
    before = await aiohttp_client(create_app(Settings(auth_keys=(OLD_KEY, KEY)), store=store))
    for key in (OLD_KEY, KEY):
        headers = {"Authorization": aiohttp.encode_basic_auth("any user", key)}
        assert (await before.get("/apps", headers=headers)).status == 200
    after = await aiohttp_client(create_app(Settings(auth_keys=(KEY,)), store=store))
    old = {"Authorization": aiohttp.encode_basic_auth("", OLD_KEY)}
    assert (await after.get("/apps", headers=old)).status == 401
    assert (await after.get("/apps", headers=AUTH)).status == 200


@pytest.mark.parametrize("candidate", [KEY, OLD_KEY, "wrong", "", KEY[:-1], KEY + "x"])
def test_keys_are_found_by_their_hash_and_no_secret_is_kept(candidate: str):
    """A password is looked up by its SHA-256 (no key's text is compared with it, so how long
    the lookup takes says nothing about any key), and the service keeps only the hashes of
    AUTH_KEY's keys: only a key itself is found."""
    keys = (KEY, OLD_KEY, "third-key")
    authenticator = Authenticator(keys)
    found = authenticator.find(candidate, State())
    assert (found is not None) == (candidate in keys)
    assert found is None or found.name == bootstrap_name(candidate)
    kept = repr(
        [(digest, p.name, p.secret_sha256, p.key) for digest, p in authenticator._bootstrap.items()]
    )
    assert not any(key in kept for key in keys)


def test_the_access_log_redacts_every_spelling_of_the_key_parameter():
    """?key=, ?KEY=, ?%6Bey= (which the server decodes to key), and spellings the server
    would not read (`;key=`, `key%00=`, `key[]=`): the value never reaches the log (more in
    tests/reliability/test_logs.py)."""
    assert redact("/events?key=s3cr3t&x=1") == "/events?key=[REDACTED]&x=1"
    assert redact("/backup?KEY=s3cr3t") == "/backup?KEY=[REDACTED]"
    assert redact("/events?x=1&%6Bey=s3cr3t#f") == "/events?x=1&%6Bey=[REDACTED]#f"
    assert redact("/events?key=a&key=b") == "/events?key=[REDACTED]&key=[REDACTED]"
    assert redact("/apps?x=1;key=s3cr3t") == "/apps?x=1;key=[REDACTED]"
    assert redact("/apps?key%00=s3cr3t&key[]=s3") == "/apps?key%00=[REDACTED]&key[]=[REDACTED]"
    assert redact("/apps/keyboard?count=1") == "/apps/keyboard?count=1"


@pytest.mark.postgres
async def test_keys_are_never_logged_nor_echoed(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
):
    """With DEBUG logging, requests carrying the keys (header, ?key=, encoded ?%6Bey=, wrong
    places) leave no key in the service's output, and no answer contains one."""
    service = Service(await make_database(), workdir, {"LOG_LEVEL": "DEBUG"})
    try:
        await service.ready(session)
        bodies: list[bytes] = []
        stream = {"Accept": "text/event-stream"}
        async with session.post(
            f"{service.url}/apps", data=b'{"name": "seen"}', headers=AUTH | JSON
        ) as r:
            assert r.status == 200  # an event for the stream below to send at once
        for path, headers in [
            ("/apps", AUTH),
            (f"/apps?key={KEY}", {}),
            (f"/backup?key={OLD_KEY}", {}),
            (f"/backup?%6Bey={KEY}", {}),
            (f"/events?key={KEY}&past=true", stream),
            (f"/events/999?key={KEY}", AUTH),
            (f"/apps/nope?key={KEY}", AUTH),
            ("/apps", {"Authorization": aiohttp.encode_basic_auth(KEY, "wrong")}),
        ]:
            async with session.get(service.url + path, headers=headers) as r:
                streaming = r.headers.get("Content-Type", "").startswith("text/event-stream")
                bodies.append(await r.content.readany() if streaming else await r.read())
        async with session.post(
            f"{service.url}/apps?key={KEY}", data=b"{bad", headers=AUTH | JSON
        ) as r:
            bodies.append(await r.read())
    finally:
        service.stop()
    log = service.log()
    assert log.count("key=[REDACTED]") + log.count("%6Bey=[REDACTED]") >= 6
    for key in (KEY, OLD_KEY):
        assert key not in log
        assert all(key.encode() not in body for body in bodies)


# -- outbound calls --------------------------------------------------------------------------


class RecordingProvider(LocalProvider):
    """A provider that records what reaches it; it may answer with a redirect instead."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.redirect_to = redirect_to

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((str(request.rel_url), dict(request.headers), await request.read()))
        if self.redirect_to:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        if request.method == "DELETE":
            return web.Response()
        return web.json_response({"id": "/db/1", "env": {"DATABASE_URL": "postgres://db"}})

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/db", self._any)


@pytest.fixture
async def service_client(aiohttp_client: Any) -> AsyncIterator[TestClient]:
    app = create_app(Settings(auth_keys=(KEY, OLD_KEY)), store=InMemoryEventStore())
    yield await aiohttp_client(app, headers=AUTH)


async def test_provider_calls_carry_none_of_our_credentials(service_client: TestClient):
    """Whatever the client sent (Basic, ?key=, cookies), a provider sees no key at all."""
    provider = RecordingProvider()
    async with provider as url:
        await service_client.post("/providers", json={"name": "db", "url": url})
        await service_client.post("/apps", json={"name": "app"})
        headers = {"Cookie": f"key={KEY}", "X-Forwarded-For": "1.2.3.4"}
        response = await service_client.post(
            "/providers/db/resources", json={"apps": ["app"]}, headers=headers
        )
        resource = await response.json()
        assert response.status == 200
        await service_client.delete(f"/providers/db/resources/{resource['id']}")
    assert [r[0].split("?")[0] for r in provider.requests] == ["/db", "/db"]
    for target, headers, body in provider.requests:
        seen = (target + repr(headers)).encode() + body
        assert KEY.encode() not in seen and OLD_KEY.encode() not in seen
        assert "Authorization" not in headers and "Cookie" not in headers


async def test_a_provider_url_pointing_at_the_service_itself_is_refused(
    service_client: TestClient,
):
    """A provider at this service's own address (loopback or not, by name or number) is a
    502 that says why, and nothing is recorded."""
    port = service_client.server.port
    for n, host in enumerate(["127.0.0.1", "localhost", "[::1]", "0.0.0.0"]):
        name = f"self{n}"
        url = f"http://{host}:{port}/apps"
        assert (
            await service_client.post("/providers", json={"name": name, "url": url})
        ).status == 200
        response = await service_client.post(f"/providers/{name}/resources", json={})
        body = await response.json()
        assert response.status == 502 and "points at this controller" in body["message"], body
    resources = await (await service_client.get("/providers/self0/resources")).json()
    assert resources == []


async def test_a_provider_redirect_is_not_followed(service_client: TestClient):
    """A provider answering with a redirect (here: back to the service) fails the call."""
    target = str(service_client.make_url("/apps"))
    provider = RecordingProvider(redirect_to=target)
    async with provider as url:
        await service_client.post("/providers", json={"name": "hop", "url": url})
        response = await service_client.post("/providers/hop/resources", json={})
    assert response.status == 502
    assert len(provider.requests) == 1  # asked once, and the redirect not followed


class TalkativeProvider(LocalProvider):
    """A "provider" URL that answers whatever it serves: here a long page, with terminal
    escapes and a line break, and a 500."""

    PAGE = b"\x1b[31mInternal\nsecret: hunter2 " + b"x" * 4000 + b" end-of-page"

    async def _any(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, body=self.PAGE)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/db", self._any)


async def test_a_failing_provider_is_quoted_briefly_and_escaped(service_client: TestClient):
    """The 502 quotes at most 64 bytes of what the provider URL answered, its control
    characters escaped: a provider URL cannot relay a page of what it serves to the client."""
    async with TalkativeProvider() as url:
        await service_client.post("/providers", json={"name": "chatty", "url": url})
        response = await service_client.post("/providers/chatty/resources", json={})
    message = (await response.json())["message"]
    assert response.status == 502 and message.isprintable(), message
    quoted = message.partition(f"to POST {url}: ")[2]
    assert quoted.startswith("\\x1b[31mInternal\\nsecret") and quoted.endswith("…")
    assert len(quoted.encode()) < 64 + 16 and "end-of-page" not in message


# -- TLS -------------------------------------------------------------------------------------


def tls_client_context() -> ssl.SSLContext:
    """Trusts only the fixture's self-signed certificate (CN=example.com, no SAN: the name
    is not checked, the certificate is)."""
    context = ssl.create_default_context(cafile=str(TLS / "example.com.crt"))
    context.check_hostname = False
    return context


@pytest.mark.postgres
async def test_https_is_served_with_the_given_certificate_and_plain_http_is_not(
    make_database: Callable[[], Awaitable[str]], workdir: Path, session: aiohttp.ClientSession
):
    """With TLS_CERT and TLS_KEY the port speaks HTTPS with that certificate, and only HTTPS."""
    env = {"TLS_CERT": str(TLS / "example.com.crt"), "TLS_KEY": str(TLS / "example.com.key")}
    service = Service(await make_database(), workdir, env, scheme="https")
    try:
        await service.ready(session)
        context = tls_client_context()
        async with session.get(f"{service.url}/apps", headers=AUTH, ssl=context) as r:
            assert r.status == 200
        served = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", service.port))
        expected = (TLS / "example.com.crt").read_text()
        assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(expected)
        plain = service.url.replace("https://", "http://")
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{plain}/apps", headers=AUTH) as r:
                await r.read()
    finally:
        service.stop()


@pytest.mark.parametrize("only", ["TLS_CERT", "TLS_KEY"])
def test_half_a_tls_configuration_refuses_to_start(only: str):
    """TLS_CERT without TLS_KEY (or the reverse) would serve plain HTTP: it is an error."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AUTH_KEY": KEY,
        "DATABASE_URL": "postgresql://nobody@/none",
        only: str(TLS / "example.com.crt"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "controller", "serve", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "TLS_CERT and TLS_KEY must be set together" in done.stderr
