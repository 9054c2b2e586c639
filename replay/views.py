"""`replay state`: what the controller held at a point of the log, as JSON or as text."""

from __future__ import annotations

from collections import Counter
from typing import Any

from domain.objects import JSON, App
from domain.timefmt import format_time
from projections.apps import all_apps, find_app_or_deleted
from projections.read_model import MemoryQueries
from projections.state import State
from replay.fold import Rebuilt


def resolve_app(state: State, ref: str) -> App | None:
    """A live app by id or name, else a deleted one (by id, or the newest of that name)."""
    app = find_app_or_deleted(state, ref)
    if app is not None:
        return app
    named = [a for a in state.deleted_apps.values() if a.name == ref]
    return max(named, key=lambda a: (a.created_at, a.id)) if named else None


async def app_view(queries: MemoryQueries, app: App) -> JSON:
    """One app with everything it had: release, formations, jobs, routes, resources."""
    release = await queries.release(app.release_id) if app.release_id else None
    return {
        "app": app.to_json(),
        "deleted": app.id in queries.state.deleted_apps,
        "release": release,
        "formations": await queries.app_formations(app.id),
        "jobs": await queries.jobs(app.id),
        "routes": await queries.routes(app.id),
        "resources": await queries.app_resources(app.id),
        "deployments": await queries.deployments(app.id),
        "releases": await queries.app_releases(app.id),
    }


async def state_document(rebuilt: Rebuilt, app_ref: str | None = None) -> JSON:
    """The state after the rebuilt events: every live app (or the one named), providers.

    Raises LookupError when `app_ref` names no app at that point.
    """
    queries = MemoryQueries(rebuilt.model)
    state = rebuilt.model.state
    at = rebuilt.last_event_at
    doc: JSON = {
        "last_event_id": rebuilt.last_event_id,
        "last_event_at": format_time(at) if at else None,
    }
    if app_ref is not None:
        app = resolve_app(state, app_ref)
        if app is None:
            raise LookupError(f"no app {app_ref!r} at event {rebuilt.last_event_id}")
        return doc | {"apps": [await app_view(queries, app)]}
    apps = [await app_view(queries, app) for app in all_apps(state)]
    return doc | {
        "apps": apps,
        "deleted_apps": [{"id": a.id, "name": a.name} for a in state.deleted_apps.values()],
        "providers": await queries.providers(),
    }


# -- text ----------------------------------------------------------------------------------


def short(identifier: str | None) -> str:
    return "-" if not identifier else identifier[:8]


def _processes(processes: Any) -> str:
    if not processes:
        return "(none)"
    return " ".join(f"{name}={count}" for name, count in sorted(processes.items()))


def _route(route: JSON) -> str:
    if route.get("type") == "tcp":
        return f"tcp :{route.get('port')} -> {route.get('service')}"
    return f"http {route.get('domain')}{route.get('path') or '/'} -> {route.get('service')}"


def app_lines(view: JSON, detail: bool) -> list[str]:
    """A readable block for one app: its summary, then one line per kind of object."""
    app = view["app"]
    head = f"APP {app['name']}  {app['id']}"
    head += "  (deleted)" if view["deleted"] else ""
    head += f"  release {short(app.get('release'))}  {app.get('strategy', '')}"
    lines = [head, f"  created    {app['created_at']}   updated {app['updated_at']}"]
    for f in view["formations"]:
        lines.append(f"  formation  {short(f['release'])}  {_processes(f.get('processes'))}")
    states = Counter(job["state"] for job in view["jobs"])
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "(none)"
    lines.append(f"  jobs       {summary}")
    if detail:
        for job in view["jobs"]:
            kind = job.get("type") or "run"
            lines.append(
                f"    {job['id']}  {kind:<8} {job['state']:<9} release "
                f"{short(job.get('release'))}  {job['updated_at']}"
            )
    for route in view["routes"]:
        lines.append(f"  route      {_route(route)}")
    for resource in view["resources"]:
        env = ", ".join(sorted(resource.get("env") or {}))
        lines.append(
            f"  resource   {short(resource['id'])}  provider "
            f"{short(resource.get('provider'))}  env {env or '-'}"
        )
    releases = view["releases"]
    lines.append(f"  releases   {len(releases)}")
    if detail:
        for release in releases:
            kinds = ", ".join(sorted(release.get("processes") or {})) or "-"
            lines.append(f"    {release['id']}  {release['created_at']}  processes {kinds}")
    for d in view["deployments"][: 1 if not detail else None]:
        lines.append(
            f"  deployment {short(d['id'])}  {d.get('status')}  "
            f"{short(d.get('old_release'))} -> {short(d.get('new_release'))}"
        )
    return lines


def state_text(doc: JSON) -> str:
    """The state document as text for a terminal."""
    at = doc["last_event_at"] or "the beginning"
    lines = [f"State after event {doc['last_event_id']} ({at})", ""]
    detail = "providers" not in doc  # one app asked for: show everything about it
    for view in doc["apps"]:
        lines += [*app_lines(view, detail), ""]
    if not doc["apps"]:
        lines += ["(no apps)", ""]
    for provider in doc.get("providers", []):
        lines.append(f"PROVIDER {provider['name']}  {provider['id']}  {provider['url']}")
    if doc.get("deleted_apps"):
        names = ", ".join(sorted(a["name"] for a in doc["deleted_apps"]))
        lines.append(f"deleted apps: {names}")
    return "\n".join(lines).rstrip() + "\n"
