"""What a key limited to some apps may see and change, for the handlers of the routes whose
row says `AppLimit.FILTER` (controller/urls.py): lists hold only its apps' objects, another
app's object is "not found" (a bare 404: nothing is revealed), and a write may name only
its apps and their releases. Keys of every app pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from commands.errors import ForbiddenError, NotFoundError
from controller import keys
from controller.auth import Principal
from domain.objects import Release, Resource
from eventstore.record import EventFilter, RecordedEvent
from projections.state import State


def caller(request: web.Request) -> Principal | None:
    return request.get(keys.PRINCIPAL)


def limited_to(request: web.Request) -> frozenset[str] | None:
    """The ids of the apps the request's key is limited to; None: every app."""
    principal = request.get(keys.PRINCIPAL)
    return None if principal is None else principal.apps


def sees_release(state: State, apps: frozenset[str] | None, release: Release) -> bool:
    """A release is an app's when it was made for it or the app lists it (current, scaled)."""
    if apps is None or release.app_id in apps:
        return True
    return any(release.id in state.app_releases.get(app_id, ()) for app_id in apps)


def visible_release(request: web.Request, state: State, release_id: str) -> None:
    """Refuse, as not found, a release the key may not use (scaling another app's release
    under one's own would reveal its env)."""
    release = state.releases.get(release_id)
    if release is not None and not sees_release(state, limited_to(request), release):
        raise NotFoundError()


def sees_resource(apps: frozenset[str] | None, resource: Resource) -> bool:
    return apps is None or any(app_id in apps for app_id in resource.apps)


def only_apps(request: web.Request, app_ids: Iterable[str], what: str) -> None:
    """Refuse a write of an app-limited key that names no app or another app than its own
    (a 403: the apps are the request's own, nothing is revealed)."""
    apps = limited_to(request)
    if apps is None:
        return
    named = set(app_ids)
    if not named or not named <= apps:
        raise ForbiddenError(f"a key limited to some apps may {what} only for its apps")


def sees_event(request: web.Request, record: RecordedEvent) -> bool:
    principal = caller(request)
    return principal is None or (
        principal.sees(record.app_id) and record.object_type not in principal.hidden_types
    )


def event_filter(request: web.Request, asked: EventFilter) -> EventFilter:
    """`asked`, narrowed to what the request's key may see: its apps' events only (an app
    it asks for that is not one of them matches nothing), never the keys' own events unless
    it is an admin key."""
    principal = caller(request)
    if principal is None or (principal.apps is None and not principal.hidden_types):
        return asked
    if (
        principal.apps is not None
        and asked.app_id is not None
        and asked.app_id not in principal.apps
    ):
        raise NotFoundError()
    return EventFilter(
        app_id=asked.app_id,
        object_types=asked.object_types,
        object_id=asked.object_id,
        app_ids=principal.apps,
        hidden_types=principal.hidden_types,
    )
