"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from applog.store import LogStore
from commands.dispatch import Dispatcher
from controller.auth import Authenticator, Principal
from controller.validation import Validators
from domain.actors import Actor
from eventstore.store import EventStore
from projections.memory import MemoryReadModel
from service.deployer import Deployer
from service.providers import ProviderClient
from service.scheduling import Scheduling
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", EventStore)
READ_MODEL = web.AppKey("read_model", MemoryReadModel)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SCHEMAS = web.AppKey("schemas", Validators)
HEALTH = web.AppKey("health", dict)  # component -> problem ("" when fine)
LOG_STORE = web.AppKey("log_store", LogStore)
PROVIDERS = web.AppKey("providers", ProviderClient)
DEPLOYER = web.AppKey("deployer", Deployer)
SCHEDULING = web.AppKey("scheduling", Scheduling)
#: Who may call: the keys of AUTH_KEY, and the headers that carried a key (controller/auth.py).
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
#: The last event a write recorded (0: none yet), for the answer's Evenflow-Event-Id.
WRITTEN = web.RequestKey("written", int)

# What the edge learns of each request (controller/middlewares.py), for handlers and logs:
#: Its id: the client's X-Request-Id, or one made for it (controller/actors.py); echoed.
REQUEST_ID = web.RequestKey("evenflow_request_id", str)
#: The key it carries, once found (absent on open routes).
PRINCIPAL = web.RequestKey("evenflow_principal", Principal)
#: Its actor, made on first use by controller.actors.actor(request): use that function.
ACTOR = web.RequestKey("evenflow_actor", Actor)
