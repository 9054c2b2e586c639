"""Cluster domain migration over HTTP: PUT /domain (Flynn: controller/domain.go)."""

from __future__ import annotations

from aiohttp import web

from commands.domains import MigrateDomain
from controller import keys
from controller.handlers.common import dispatch, event_from, model
from controller.http import json_response, read_json
from domain.clock import now
from domain.events import DomainMigrated
from domain.ids import new_id


async def migrate_domain(request: web.Request) -> web.Response:
    doc = await read_json(request)
    configured = request.app[keys.SETTINGS].default_route_domain
    command = MigrateDomain.from_json(doc, new_id=new_id(), now=now(), configured_domain=configured)
    migrated = event_from(await dispatch(request, command), DomainMigrated).migration
    # Flynn answers before its worker starts; this migration has already finished.
    return json_response(model(request).encode(migrated))
