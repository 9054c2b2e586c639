"""`replay history`: an app's timeline, one readable line per event."""

from __future__ import annotations

import orjson

from domain.codec import actor_of, decode, envelope
from domain.events import (
    AppCreated,
    AppDeleted,
    AppReleaseSet,
    AppUpdated,
    ArtifactCreated,
    DeploymentCreated,
    DeploymentStatusChanged,
    DomainMigrated,
    Event,
    FormationScaled,
    JobStateChanged,
    ProviderCreated,
    ReleaseCreated,
    ReleaseDeleted,
    ResourceCreated,
    ResourceDeleted,
    RouteCreated,
    RouteDeleted,
    RouteUpdated,
)
from domain.ids import canonical_uuid
from domain.keys import KeyCreated, KeyRevoked
from domain.objects import JSON, Route
from eventstore.record import EventFilter, RecordedEvent
from replay.progress import Progress
from replay.source import LogSource
from replay.views import short

APP_EVENTS = EventFilter(object_types=("app",))


async def find_app_id(
    source: LogSource, ref: str, progress: Progress | None = None
) -> tuple[str, str] | None:
    """(id, name) of the app `ref` names in the whole log: an app id first (Flynn's rule for
    uuid-shaped references), else the newest app ever created with that name."""
    wanted = canonical_uuid(ref)
    found: tuple[str, str] | None = None
    async for record in source.read(filter=APP_EVENTS):
        if progress is not None:
            progress.reach(record.id)
        name = orjson.loads(record.data).get("name", "")
        if record.object_id == wanted:
            return record.object_id, name
        if name == ref and record.type == AppCreated.__name__:
            found = (record.object_id, name)
    return found


async def app_events(
    source: LogSource, app_id: str, progress: Progress | None = None
) -> list[RecordedEvent]:
    found = []
    async for record in source.read(filter=EventFilter(app_id=app_id)):
        if progress is not None:
            progress.reach(record.id)
        found.append(record)
    return found


def _processes(processes: dict[str, int] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((processes or {}).items())) or "nothing"


def _route(route: Route) -> str:
    if route.type == "tcp":
        return f"tcp :{route.port} -> {route.service}"
    return f"http {route.domain}{route.path or '/'} -> {route.service}"


def summary(event: Event) -> str:
    """What happened, in a few words."""
    match event:
        case AppCreated(app=app):
            return f'app "{app.name}" created (strategy {app.strategy})'
        case AppUpdated(app=app):
            meta = ", ".join(f"{k}={v}" for k, v in sorted(app.meta.items())) or "none"
            timeout = f"timeout {app.deploy_timeout}s"
            return f"app updated: strategy {app.strategy}, {timeout}, meta {meta}"
        case AppReleaseSet(release=release, prev_release=prev):
            was = f" (was {short(prev.id)})" if prev else ""
            return f"release {short(release.id)} set as current{was}"
        case AppDeleted(deleted_routes=routes, deleted_resources=resources):
            releases = len(event.deleted_releases)
            return (
                f"app deleted, with {len(routes)} route(s), {releases} release(s) "
                f"and {len(resources)} resource(s)"
            )
        case ReleaseDeleted(release=release, remaining_apps=others):
            kept = f" (kept for {len(others)} other app(s))" if others else ""
            return f"release {short(release)} deleted{kept}"
        case ReleaseCreated(release=release):
            kinds = ", ".join(sorted(release.processes)) or "no processes"
            return f"release {short(release.id)} created ({kinds})"
        case FormationScaled(release=release, processes=None):
            return f"formation of release {short(release)} deleted"
        case FormationScaled(release=release, processes=processes, prev_processes=prev):
            was = f" (was {_processes(prev)})" if prev is not None else ""
            return f"release {short(release)} scaled to {_processes(processes)}{was}"
        case DeploymentCreated(deployment=d):
            return (
                f"deployment {short(d.id)} {d.status}: {short(d.old_release_id)} -> "
                f"{short(d.new_release_id)} ({d.strategy})"
            )
        case DeploymentStatusChanged(deployment=d, status=status, error=error):
            step = f" ({event.job_type} {event.job_state})" if event.job_type else ""
            return f"deployment {short(d)} {status}{step}" + (f": {error}" if error else "")
        case JobStateChanged(job=job):
            exit_status = f" (exit {job.exit_status})" if job.exit_status is not None else ""
            return f"job {job.type or 'run'} {job.id} {job.state}{exit_status}"
        case ResourceCreated(resource=resource):
            return f"resource {short(resource.id)} added (provider {short(resource.provider_id)})"
        case ResourceDeleted(resource=resource):
            return f"resource {short(resource.id)} deleted"
        case RouteCreated(route=route):
            return f"route {_route(route)} created"
        case RouteUpdated(route=route):
            return f"route {_route(route)} updated"
        case RouteDeleted(route=route):
            return f"route {_route(route)} deleted"
        case ProviderCreated(provider=p):
            return f'provider "{p.name}" created'
        case ArtifactCreated(artifact=a):
            return f"artifact {short(a.id)} created ({a.type})"
        case DomainMigrated(migration=m):
            return f"domain migration {m.old_domain} -> {m.domain}"
        case KeyCreated(key=key):
            apps = f", {len(key.apps)} app(s)" if key.apps is not None else ""
            return f'key "{key.name}" created ({key.scope}{apps})'
        case KeyRevoked(name=name):
            return f'key "{name}" revoked'
    return type(event).__name__


def timeline(records: list[RecordedEvent]) -> list[JSON]:
    """Each event's envelope (Flynn's JSON), plus its stored type, a summary and its whole
    actor (null for events written before actors)."""
    entries = []
    for r in records:
        actor = actor_of(r)
        entries.append(
            orjson.loads(envelope(r))
            | {
                "type": r.type,
                "summary": summary(decode(r)),
                "actor": None if actor is None else actor.to_json(),
            }
        )
    return entries


def history_text(app_id: str, name: str, entries: list[JSON]) -> str:
    lines = [f"History of app {name} ({app_id}): {len(entries)} events", ""]
    for entry in entries:
        who = who_text(entry["actor"])
        lines.append(f"{entry['id']:>10}  {entry['created_at']:<28}  {who:<40}  {entry['summary']}")
    return "\n".join(lines) + "\n"


def who_text(actor: JSON | None) -> str:
    """Who, for a terminal: key and/or component, address, request or cause."""
    if actor is None:
        return "-"
    parts = [actor.get("key") or "", actor.get("component") or ""]
    name = "/".join(p for p in parts if p) or "-"
    where = actor.get("address")
    text = f"{name} @{where}" if where else name
    if actor.get("request_id"):
        text += f" [{actor['request_id']}]"
    elif actor.get("causation_id"):
        text += f" (after event {actor['causation_id']})"
    return _printable(text)


def _printable(text: str) -> str:
    """Characters a terminal would obey (escape sequences) written out instead."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
