"""Random sequences of API calls against a simple model of the controller (hypothesis'
RuleBasedStateMachine): every answer is the one the model predicts, and so is the state
read back after every step, including after restarts (a new service on the same log)."""

import asyncio
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from controller.app import create_app
from eventstore.memory import InMemoryEventStore
from service.settings import Settings
from tests.reliability.conftest import report

KEY = "stateful-key"
#: Examples, calls, restarts and 2xx answers of the run (reported at the end).
STATS: Counter[str] = Counter()
HEADERS = {"Authorization": aiohttp.encode_basic_auth("", KEY), "Content-Type": "application/json"}
NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta"])
DOMAINS = st.sampled_from(["a.test", "b.test", "c.test"])
TYPES = ("web", "worker")
META = st.dictionaries(st.sampled_from(["owner", "team"]), st.sampled_from(["x", "y", ""]))
#: Counts of a formation: mostly small, sometimes over the limit (a 400).
COUNTS = st.dictionaries(
    st.sampled_from([*TYPES, "bogus"]), st.integers(0, 3) | st.just(10_001), max_size=3
)


class Controller(RuleBasedStateMachine):
    """The service on an in-memory log, and what it should hold."""

    artifacts = Bundle("artifacts")
    releases = Bundle("releases")

    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        self.loop = asyncio.new_event_loop()
        self.store = InMemoryEventStore()
        self.client: TestClient | None = None
        self.apps: dict[str, dict[str, Any]] = {}  # name -> id, meta, strategy, release
        self.release_types: dict[str, tuple[str, ...]] = {}
        self.formations: dict[tuple[str, str], dict[str, int]] = {}  # (app id, release) -> counts
        # The releases each app lists (set as its release, or scaled), by app id: deleting the
        # app deletes those no other app lists.
        self.listed: dict[str, set[str]] = {}
        self.deleted_releases: set[str] = set()
        self.routes: dict[str, tuple[str, str]] = {}  # route id -> (app id, domain)
        self._start()

    # -- plumbing ----------------------------------------------------------------------

    def _start(self) -> None:
        async def start() -> TestClient:
            client = TestClient(
                TestServer(create_app(Settings(auth_keys=(KEY,)), store=self.store))
            )
            await client.start_server()
            return client

        self.client = self.loop.run_until_complete(start())

    def _stop(self) -> None:
        assert self.client is not None
        self.loop.run_until_complete(self.client.close())

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON or the raw bytes when not JSON)."""

        async def go() -> tuple[int, Any]:
            assert self.client is not None
            data = raw if raw is not None else (None if body is None else orjson.dumps(body))
            async with self.client.request(method, path, data=data, headers=HEADERS) as r:
                content = await r.read()
                STATS["calls"] += 1
                STATS["2xx"] += 200 <= r.status < 300
                if r.headers.get("Content-Type", "").startswith("application/json"):
                    return r.status, orjson.loads(content)
                return r.status, content

        return self.loop.run_until_complete(go())

    def teardown(self) -> None:
        self._stop()
        self.loop.run_until_complete(self.store.close())
        self.loop.close()

    def app_id(self, name: str) -> str | None:
        return self.apps[name]["id"] if name in self.apps else None

    # -- apps --------------------------------------------------------------------------

    @rule(name=NAMES)
    def create_app(self, name: str) -> None:
        status, body = self.call("POST", "/apps", {"name": name})
        if name in self.apps:
            assert status == 409 and body["code"] == "object_exists"
            return
        assert status == 200 and body["name"] == name
        self.apps[name] = {"id": body["id"], "meta": {}, "strategy": "all-at-once", "release": None}

    @rule(name=NAMES, meta=META, strategy=st.sampled_from([None, "all-at-once", "one-by-one"]))
    def update_app(self, name: str, meta: dict[str, str], strategy: str | None) -> None:
        status, body = self.call("POST", f"/apps/{name}", {"meta": meta, "strategy": strategy})
        if name not in self.apps:
            assert (status, body) == (404, b"")
            return
        assert status == 200 and body["meta"] == meta
        self.apps[name]["meta"] = meta
        self.apps[name]["strategy"] = strategy or self.apps[name]["strategy"]
        assert body["strategy"] == self.apps[name]["strategy"]

    @rule(name=NAMES)
    def delete_app(self, name: str) -> None:
        status, body = self.call("DELETE", f"/apps/{name}")
        if name not in self.apps:
            assert (status, body) == (404, b"")
            return
        assert (status, body) == (200, b"")
        app_id = self.apps.pop(name)["id"]
        self.formations = {k: v for k, v in self.formations.items() if k[0] != app_id}
        kept = {r for a in self.apps.values() for r in self.listed.get(a["id"], ())}
        self.deleted_releases |= self.listed.pop(app_id, set()) - kept
        self.routes = {k: v for k, v in self.routes.items() if v[0] != app_id}

    # -- artifacts and releases --------------------------------------------------------

    @rule(target=artifacts)
    def create_artifact(self) -> str:
        status, body = self.call("POST", "/artifacts", {"type": "docker", "uri": "https://x/i"})
        assert status == 200
        return str(body["id"])

    @rule(target=releases, artifact=artifacts, types=st.sets(st.sampled_from(TYPES), min_size=1))
    def create_release(self, artifact: str, types: set[str]) -> str:
        processes = {t: {"cmd": [t]} for t in sorted(types)}
        status, body = self.call(
            "POST", "/releases", {"artifact": artifact, "processes": processes}
        )
        assert status == 200 and sorted(body["processes"]) == sorted(types)
        self.release_types[body["id"]] = tuple(sorted(types))
        return str(body["id"])

    @rule(name=NAMES, release=releases)
    def set_release(self, name: str, release: str) -> None:
        status, body = self.call("PUT", f"/apps/{name}/release", {"id": release})
        if name not in self.apps:
            assert (status, body) == (404, b"")
            return
        if release in self.deleted_releases:
            assert status == 400 and body["code"] == "validation_error", (status, body)
            return
        assert status == 200 and body["id"] == release
        self.apps[name]["release"] = release
        self.listed.setdefault(self.apps[name]["id"], set()).add(release)

    @rule(name=NAMES)
    def set_unknown_release(self, name: str) -> None:
        status, body = self.call("PUT", f"/apps/{name}/release", {"id": str(uuid.uuid4())})
        if name not in self.apps:
            assert (status, body) == (404, b"")
        else:
            assert status == 400 and body["code"] == "validation_error"

    # -- formations --------------------------------------------------------------------

    @rule(name=NAMES, release=releases, counts=COUNTS)
    def put_formation(self, name: str, release: str, counts: dict[str, int]) -> None:
        status, body = self.call("PUT", f"/apps/{name}/formations/{release}", {"processes": counts})
        if any(n > 10_000 for n in counts.values()):
            assert status == 400 and body["code"] == "validation_error"
            return
        if name not in self.apps:
            assert (status, body) == (404, b"")
            return
        if release in self.deleted_releases:
            assert status == 404, (status, body)
            return
        if set(counts) - set(self.release_types[release]):
            assert status == 400 and "Invalid process types" in body["message"]
            return
        assert status == 200 and body.get("processes", {}) == counts
        self.formations[(self.apps[name]["id"], release)] = counts
        self.listed.setdefault(self.apps[name]["id"], set()).add(release)

    @rule(name=NAMES, release=releases)
    def delete_formation(self, name: str, release: str) -> None:
        status, body = self.call("DELETE", f"/apps/{name}/formations/{release}")
        key = (self.app_id(name), release)
        if key not in self.formations:
            assert (status, body) == (404, b"")
            return
        assert (status, body) == (200, b"")
        del self.formations[key]

    # -- routes ------------------------------------------------------------------------

    @rule(name=NAMES, domain=DOMAINS)
    def create_route(self, name: str, domain: str) -> None:
        route = {"type": "http", "domain": domain, "service": f"{name}-web"}
        status, body = self.call("POST", f"/apps/{name}/routes", route)
        if name not in self.apps:
            assert (status, body) == (404, b"")
            return
        if any(d == domain for _, d in self.routes.values()):
            assert status == 409 and body["code"] == "conflict"
            return
        assert status == 200 and body["domain"] == domain
        self.routes[body["id"]] = (self.apps[name]["id"], domain)

    @precondition(lambda self: bool(self.routes))
    @rule(data=st.data())
    def delete_route(self, data: st.DataObject) -> None:
        # In the order they were made: route ids are random, so an order by id would have
        # the same draw pick another route when hypothesis replays the steps.
        route_id = data.draw(st.sampled_from(list(self.routes)))
        app_id, _ = self.routes.pop(route_id)
        status, body = self.call("DELETE", f"/apps/{app_id}/routes/http/{route_id}")
        assert (status, body) == (200, b"")

    # -- bad input and restarts --------------------------------------------------------

    @rule(raw=st.binary(max_size=64) | st.sampled_from([b"{", b"[]", b'{"name":1}', b"null"]))
    def post_garbage(self, raw: bytes) -> None:
        status, body = self.call("POST", "/apps", raw=raw)
        if status == 200:  # some bytes are a valid body: {} makes an app with a new name
            self.apps[body["name"]] = {
                "id": body["id"],
                "meta": {},
                "strategy": "all-at-once",
                "release": None,
            }
            return
        assert status == 400 and body["code"] in ("syntax_error", "validation_error")

    @rule()
    def restart(self) -> None:
        self._stop()
        self._start()
        STATS["restarts"] += 1

    # -- what must hold after every step -----------------------------------------------

    @invariant()
    def the_state_read_back_is_the_model(self) -> None:
        status, listed = self.call("GET", "/apps")
        assert status == 200
        got = {a["name"]: (a["id"], a["meta"], a["strategy"], a.get("release")) for a in listed}
        want = {n: (a["id"], a["meta"], a["strategy"], a["release"]) for n, a in self.apps.items()}
        assert got == want
        for name, app in self.apps.items():
            status, formations = self.call("GET", f"/apps/{name}/formations")
            assert status == 200
            assert {f["release"]: f.get("processes", {}) for f in formations} == {
                release: counts
                for (app_id, release), counts in self.formations.items()
                if app_id == app["id"]
            }
            status, routes = self.call("GET", f"/apps/{name}/routes")
            assert {r["id"]: r["domain"] for r in routes} == {
                route_id: domain
                for route_id, (app_id, domain) in self.routes.items()
                if app_id == app["id"]
            }


def test_random_call_sequences_and_restarts_follow_the_model(request: pytest.FixtureRequest):
    """Every answer and every state read back match the model, across restarts."""
    STATS.clear()
    run_state_machine_as_test(
        Controller,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    report(request, "hypothesis stateful examples (call sequences)", STATS["examples"])
    report(request, "hypothesis stateful API calls", STATS["calls"])
    report(request, "hypothesis stateful restarts", STATS["restarts"])
    report(request, "hypothesis stateful 2xx answers", STATS["2xx"])
    assert STATS["restarts"] > 0 and STATS["2xx"] > STATS["examples"]
