"""Cluster domain migration: PUT /domain (Flynn: controller/domain.go and the worker in
controller/worker/domain_migration/domain_migration.go), decided as one command.

Flynn records the migration, then a background job redeploys the controller and the router
and copies the routes, then records the migration again with finished_at. Here the copies
and both `domain_migration` events are one append: the migration is finished (or refused)
when PUT /domain answers, and nothing can fail halfway. There is no cluster CA to make a
certificate with, so `tls_cert` stays what the client sent (Flynn generates one when absent).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from commands.errors import AlreadyExistsError, ValidationError
from commands.types import handler, handlers
from domain.events import DomainMigrated, Event, RouteCreated
from domain.objects import JSON, DomainMigration, Route
from projections.routes import current_domain, http_routes_under
from projections.state import State


@attrs.frozen
class MigrateDomain:
    id: str
    now: datetime
    old_domain: str
    domain: str
    # DEFAULT_ROUTE_DOMAIN: the current domain until a migration has finished.
    configured_domain: str | None = None
    tls_cert: JSON | None = None

    @classmethod
    def from_json(
        cls, doc: JSON, *, new_id: str, now: datetime, configured_domain: str | None
    ) -> MigrateDomain:
        """From a schema-checked body; id, created_at and finished_at are the server's."""
        return cls(
            id=new_id,
            now=now,
            old_domain=doc["old_domain"],
            domain=doc["domain"],
            configured_domain=configured_domain,
            tls_cert=doc.get("tls_cert"),
        )


def migrate_domain(state: State, cmd: MigrateDomain) -> list[Event]:
    current = current_domain(state, cmd.configured_domain) or ""
    if cmd.old_domain != current:
        raise ValidationError(
            "", f'Can\'t migrate from "{cmd.old_domain}" when currently using "{current}"'
        )
    if cmd.id in state.domain_migrations:
        raise AlreadyExistsError(f'domain migration "{cmd.id}" already exists')
    started = DomainMigration(
        id=cmd.id,
        old_domain=cmd.old_domain,
        domain=cmd.domain,
        created_at=cmd.now,
        old_tls_cert=_router_cert(state),
        tls_cert=cmd.tls_cert,
    )
    copies = [RouteCreated(route) for route in _copied_routes(state, started, cmd.now)]
    finished = attrs.evolve(started, finished_at=cmd.now)
    return [DomainMigrated(started), *copies, DomainMigrated(finished)]


def _router_cert(state: State) -> JSON | None:
    """Flynn: the router app's release env TLSCERT/TLSKEY (its 404 when there is no router)."""
    router = state.app_named("router")
    release = state.releases.get(router.release_id or "") if router is not None else None
    if release is None:
        return None
    env = release.env
    return {"ca_cert": "", "cert": env.get("TLSCERT", ""), "pin": "", "key": env.get("TLSKEY", "")}


def _copied_routes(state: State, migration: DomainMigration, now: datetime) -> list[Route]:
    """A copy of each http route under the old domain, under the new one; the old routes stay.

    Flynn's worker matches any domain ending in the old one ("xexample.com" for
    "example.com"), drops the path (path routes collapse onto "/", under whichever service
    came first) and skips taken domains by prefix. Here a subdomain must end in
    ".<old domain>", the path is kept, and only a taken (domain, path) is skipped.
    """
    old, new = migration.old_domain, migration.domain
    taken = set(state.http_routes)
    copies = []
    for route in http_routes_under(state, old):  # "/" routes first: path routes need them
        domain = route.domain[: len(route.domain) - len(old)] + new
        if (domain, route.path) in taken or (route.path != "/" and (domain, "/") not in taken):
            continue
        taken.add((domain, route.path))
        tls_cert, tls_key = _copied_cert(route, migration)
        copies.append(
            Route(
                type="http",
                # The same route under the same migration always gets the same id.
                id=str(uuid.uuid5(uuid.UUID(migration.id), route.id)),
                parent_ref=route.parent_ref,
                service=route.service,
                created_at=now,
                updated_at=now,
                domain=domain,
                sticky=route.sticky,
                path=route.path,
                leader=route.leader,
                drain_backends=route.drain_backends,
                tls_cert=tls_cert,
                tls_key=tls_key,
            )
        )
    return copies


def _copied_cert(route: Route, migration: DomainMigration) -> tuple[str, str]:
    """The new default certificate in place of the old one; a route's own one is kept."""
    old_cert = (migration.old_tls_cert or {}).get("cert") or ""
    if route.tls_cert and route.tls_cert == old_cert.strip():
        new = migration.tls_cert or {}
        return new.get("cert") or "", new.get("key") or ""
    return route.tls_cert, route.tls_key


HANDLERS = handlers(
    handler(MigrateDomain, migrate_domain),
)
