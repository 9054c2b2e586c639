"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from applog.store import LogStore
from commands.dispatch import Dispatcher
from controller.validation import Validators
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
#: The last event a write recorded (0: none yet), for the answer's Evenflow-Event-Id.
WRITTEN = web.RequestKey("written", int)
