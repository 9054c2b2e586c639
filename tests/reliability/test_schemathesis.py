"""Schemathesis against the live service, from its own GET /openapi.json: requests made from
the schemas (valid ones, and ones that break them on purpose) never get a 5xx, and every 4xx
is a Flynn error document.

Two answers are deliberately not documents, because Flynn's clients rely on their exact shape
(flynn-api.md 1.1 and 1.5): not found is a bare 404 with an empty body, and a missing or
wrong key a bare 401. The router's own text answers (404 "404 page not found" for a path no
route matches, 405 "Method Not Allowed") are Flynn's router's too.
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from tests.reliability.conftest import report
from tests.reliability.service import AUTH, JSON, KEY, OLD_KEY, LocalProvider, Service

pytestmark = pytest.mark.postgres

#: Examples per operation and per kind of data (valid, invalid, valid on existing objects);
#: FUZZ_EXAMPLES=200 for a longer search.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 20)
#: Seconds any one request may take before it counts as a hang.
TIMEOUT = 10.0


@attrs.define
class Findings:
    examples: int = 0
    failures: list[str] = attrs.field(factory=list)
    statuses: dict[int, int] = attrs.field(factory=dict)


def is_flynn_error(body: bytes) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("code"), str)
        and isinstance(doc.get("message"), str)
        and isinstance(doc.get("retry"), bool)
    )


def problem(status: int, headers: Any, body: bytes) -> str | None:
    """What is wrong with an answer, or None."""
    if KEY.encode() in body or OLD_KEY.encode() in body:
        return "the key is echoed"
    if status >= 500:
        return f"a {status}"
    if status < 400:
        return None
    if status in (401, 404) and body == b"":
        return None  # Flynn's bare 401 and bare 404
    if (status, body) in ((404, b"404 page not found"), (405, b"Method Not Allowed")):
        return None  # the router's own answers, as Flynn's router gives them
    if not headers.get("Content-Type", "").startswith("application/json"):
        return f"a {status} that is not JSON"
    return None if is_flynn_error(body) else f"a {status} that is not an error document"


def send(case: Any, url: str, provider: str, findings: Findings) -> None:
    """Make the request; a stream is judged by its status and headers, then closed."""
    if case.operation.path == "/providers" and isinstance(case.body, dict) and "url" in case.body:
        case.body["url"] = provider  # the local stub: fuzzing must not call the internet
    kwargs = case.as_transport_kwargs(base_url=url, headers=AUTH)
    kwargs.pop("timeout", None)
    query = kwargs.get("params") or {}
    if query.get("follow") == "true":
        query["follow"] = "false"  # a followed log never ends: its shape is checked elsewhere
    started = time.monotonic()
    try:
        with requests.request(**kwargs, stream=True, timeout=TIMEOUT) as response:
            streaming = response.headers.get("Content-Type", "").startswith("text/event-stream")
            body = b"" if streaming else response.content
    except requests.RequestException as exc:
        findings.failures.append(f"{case.operation.label}: {exc!r}\n  {case.as_curl_command()}")
        return
    findings.examples += 1
    findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
    if (wrong := problem(response.status_code, response.headers, body)) is not None:
        findings.failures.append(
            f"{case.operation.label}: {wrong}: {body[:300]!r}\n  {case.as_curl_command()}"
        )
    assert time.monotonic() - started < TIMEOUT


def fuzz(
    doc: dict[str, Any], url: str, provider: str, known: dict[str, dict[str, str]]
) -> Findings:
    """Every operation, EXAMPLES times per kind of data; the findings, not the first failure."""
    schema = schemathesis.openapi.from_dict(doc)
    findings = Findings()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        path = operation.path
        passes: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if path in known:
            passes.append((GenerationMode.POSITIVE, known[path]))
        for mode, path_parameters in passes:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                send(case, url, provider, findings)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
    return findings


def logged_errors(log: str) -> list[str]:
    """Each distinct error the service logged (a traceback's last line and where it arose)."""
    found: dict[str, str] = {}
    for block in log.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        last = next((i for i, line in enumerate(lines) if not line.startswith(" ")), len(lines))
        where = [line.strip() for line in lines[:last] if line.strip().startswith("File")]
        error = lines[last] if last < len(lines) else "?"
        found.setdefault(error, f"{error}\n  at {where[-1] if where else '?'}")
    return list(found.values())


class StubProvider(LocalProvider):
    """A resource provider on 127.0.0.1 that provisions anything."""

    def __init__(self) -> None:
        self.count = 0

    async def _provision(self, request: web.Request) -> web.Response:
        self.count += 1
        return web.json_response({"id": f"/db/{self.count}", "env": {"DB": str(self.count)}})

    async def _deprovision(self, request: web.Request) -> web.Response:
        return web.Response()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/db", self._provision)
        router.add_delete("/db", self._deprovision)


async def known_objects(
    session: aiohttp.ClientSession, url: str, provider: str
) -> dict[str, dict[str, str]]:
    """Objects to aim some requests at (random ids mostly find nothing): path -> parameters."""

    async def post(path: str, body: object, method: str = "POST") -> Any:
        async with session.request(
            method, url + path, data=orjson.dumps(body), headers=AUTH | JSON
        ) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    app = await post("/apps", {"name": "fuzz"})
    artifact = await post("/artifacts", {"type": "docker", "uri": "https://example.com/i"})
    release = await post("/releases", {"artifact": artifact["id"], "processes": {"web": {}}})
    await post(f"/apps/{app['id']}/release", {"id": release["id"]}, "PUT")
    async with session.get(f"{url}/apps/fuzz/routes", headers=AUTH) as r:
        (route,) = await r.json()  # the default route: fuzz.fuzz.test
    job = f"host-{app['id']}"
    await post(
        f"/apps/fuzz/jobs/{job}", {"id": job, "release": release["id"], "state": "up"}, "PUT"
    )
    ids = {"app": "fuzz", "release": release["id"], "job": job, "type": "http", "id": route["id"]}
    await post("/providers", {"name": "fuzzdb", "url": provider})
    resource = await post("/providers/fuzzdb/resources", {"apps": ["fuzz"]})
    resources = {"provider": "fuzzdb", "resource": resource["id"]}
    return {
        "/providers/{provider}": resources,
        "/providers/{provider}/resources": resources,
        "/providers/{provider}/resources/{resource}": resources,
        "/apps/{app}": ids,
        "/apps/{app}/formations/{release}": ids,
        "/apps/{app}/jobs/{job}": ids,
        "/apps/{app}/routes/{type}/{id}": ids,
        "/apps/{app}/log": ids,
        "/apps/{app}/deploy": ids,
        "/apps/{app}/release": ids,
        "/releases/{id}": {"id": release["id"]},
        "/artifacts/{id}": {"id": artifact["id"]},
        "/events/{id}": {"id": "1"},
    }


async def test_fuzzed_requests_never_get_a_5xx_and_every_4xx_is_an_error_document(
    make_database: Callable[[], Awaitable[str]],
    workdir: Path,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
):
    """Schemathesis' valid and invalid requests for every operation: no 5xx, no hang, no
    echoed key, and every 4xx a Flynn error document (or Flynn's bare 401/404)."""
    service = Service(await make_database(), workdir, {"DEFAULT_ROUTE_DOMAIN": "fuzz.test"})
    try:
        await service.ready(session)
        async with session.get(f"{service.url}/openapi.json", headers=AUTH) as r:
            doc = await r.json()
        async with StubProvider() as provider:
            known = await known_objects(session, service.url, provider)
            started = time.monotonic()
            findings = await asyncio.to_thread(fuzz, doc, service.url, provider, known)
        took = time.monotonic() - started
        async with session.get(f"{service.url}/.well-known/status", headers=AUTH) as r:
            health = await r.json()  # the background tasks lived through it all
        errors = logged_errors(service.log())
    finally:
        service.stop()
    report(request, "schemathesis examples run", findings.examples)
    report(request, "schemathesis failures found", len(findings.failures))
    report(request, "schemathesis statuses", dict(sorted(findings.statuses.items())))
    report(request, "schemathesis time (s)", f"{took:.1f}")
    assert findings.examples > 10 * len(doc["paths"])
    assert not findings.failures, "\n".join(findings.failures[:20])
    assert not errors, "\n\n".join(errors)
    assert health["data"]["status"] == "healthy", health
