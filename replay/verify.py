"""`replay verify`: the log's state, rebuilt in memory, against the SQL read model and against
what a running service answers. Any difference is drift."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from typing import Any

import orjson

from domain.objects import JSON
from eventstore.store import LogReader
from projections.read_model import MemoryQueries, ReadModel
from replay.exits import CommandError
from replay.fold import rebuild
from replay.progress import Progress

#: Differences listed at most (the count is always given).
MAX_LISTED = 50
#: Times the service comparison starts over when the service moved on meanwhile.
ATTEMPTS = 3


def differences(left: Any, right: Any, names: tuple[str, str], path: str = "") -> list[str]:
    """Every path at which two JSON documents differ, in a stable order."""
    found: list[str] = []
    _diff(left, right, names, path, found)
    return found


def _diff(left: Any, right: Any, names: tuple[str, str], path: str, out: list[str]) -> None:
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            at = f"{path}.{key}" if path else str(key)
            if key not in right:
                out.append(f"{at}: only in {names[0]}")
            elif key not in left:
                out.append(f"{at}: only in {names[1]}")
            else:
                _diff(left[key], right[key], names, at, out)
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            _diff(a, b, names, f"{path}[{i}]", out)
    elif left != right:
        out.append(f"{path}: {names[0]} {_brief(left)} != {names[1]} {_brief(right)}")


def _brief(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:117] + "..."


async def verify_read_model(
    source: LogReader, model: ReadModel, name: str = "sql", progress: Progress | None = None
) -> tuple[list[str], list[str]]:
    """(differences, notes) between the log's state and `model`, at the model's position."""
    progress = progress or Progress(enabled=False)
    progress.stage("reading the read model", unit=None)
    snapshot = await model.snapshot()
    at = snapshot["last_event_id"]
    head = await source.last_id()
    notes = [] if at == head else [f"the {name} read model is at event {at}, the log at {head}"]
    rebuilt = await rebuild(source, until=at, progress=progress.stage("folding the log", at))
    progress.done()
    expected = await MemoryQueries(rebuilt.model).snapshot()
    return differences(expected, snapshot, ("log", name)), notes


# -- a running service -----------------------------------------------------------------------


class Service:
    """GETs against a controller's API with its auth key (stdlib only: a CLI's few calls)."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f":{key}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(f"cannot reach the service at {self.url}: {reason}") from None

    def last_event_id(self) -> int:
        status, body = self.get("/.well-known/status")
        if status == 401:
            raise CommandError(f"the service at {self.url} refused the key (401 Unauthorized)")
        try:
            if status in (200, 500):
                return int(orjson.loads(body)["data"]["last_event_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass
        raise CommandError(f"{self.url}/.well-known/status answered {status}: not an Evenflow")


async def expected_answers(queries: MemoryQueries) -> list[tuple[str, JSON | list[JSON] | None]]:
    """Each GET the comparison makes, with the answer the log's state implies (None: 404)."""
    answers: list[tuple[str, JSON | list[JSON] | None]] = [
        ("/apps", await queries.apps()),
        ("/releases", await queries.releases()),
        ("/artifacts", await queries.artifacts()),
        ("/providers", await queries.providers()),
    ]
    for app in await queries.apps():
        base, release = f"/apps/{app['id']}", app.get("release")
        answers += [
            (base, app),
            (f"{base}/release", await queries.release(release) if release else None),
            (f"{base}/releases", await queries.app_releases(app["id"])),
            (f"{base}/formations", await queries.app_formations(app["id"])),
            (f"{base}/jobs", await queries.jobs(app["id"])),
            (f"{base}/routes", await queries.routes(app["id"])),
            (f"{base}/resources", await queries.app_resources(app["id"])),
            (f"{base}/deployments", await queries.deployments(app["id"])),
        ]
    for provider in await queries.providers():
        path = f"/providers/{provider['id']}/resources"
        answers.append((path, await queries.resources(provider["id"])))
    return answers


def compare_answers(
    service: Service, answers: list[tuple[str, Any]], progress: Progress | None = None
) -> tuple[list[str], list[str]]:
    """(differences, notes): a path the service does not route at all is a note."""
    found: list[str] = []
    notes: list[str] = []
    for path, expected in answers:
        status, body = service.get(path)
        if progress is not None:
            progress.add()
        if status == 404 and body.startswith(b"404 page not found"):
            notes.append(f"{path}: not served by this service")
            continue
        actual = orjson.loads(body) if status == 200 and body else None
        if status not in (200, 404):
            found.append(f"{path}: the service answered {status}")
        elif (expected is None) != (actual is None):
            found.append(f"{path}: log {_brief(expected)} != service (status {status})")
        else:
            found += differences(expected, actual, ("log", "service"), path)
    return found, notes


async def verify_service(
    source: LogReader, service: Service, progress: Progress | None = None
) -> tuple[list[str], list[str]]:
    """(differences, notes) between the log's state and the service's answers.

    Compared at the service's position; if the service moved on during the comparison,
    it starts over (a few times).
    """
    progress = progress or Progress(enabled=False)
    head = await source.last_id()
    found: list[str] = []
    for _ in range(ATTEMPTS):
        at = service.last_event_id()
        if at > head:
            return [f"the service is at event {at}, beyond the log's last event {head}"], []
        rebuilt = await rebuild(source, until=at, progress=progress.stage("folding the log", at))
        answers = await expected_answers(MemoryQueries(rebuilt.model))
        progress.stage("asking the service", len(answers), unit="requests", every=1)
        found, notes = compare_answers(service, answers, progress)
        progress.done()
        if service.last_event_id() == at:
            return found, notes
    return found, [f"the service kept moving; compared at event {at}"]
