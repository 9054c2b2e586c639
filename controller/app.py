"""The aiohttp application factory: the composition root of the running service."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from applog.store import MemoryLogStore
from controller import keys
from controller.access_log import REQUEST_LOG, RequestLog
from controller.auth import Authenticator
from controller.broadcast import broadcast_context, close_streams
from controller.consistency import consistency_context
from controller.dashboard.history import history_context
from controller.endpoints import ENDPOINTS
from controller.limits import limits_context
from controller.metrics import metrics_context
from controller.middlewares import edge, edge_headers
from controller.urls import setup_routes
from controller.validation import load_validators
from eventstore.store import EventStore
from service.deployer import deploying
from service.event_log import event_log
from service.log_output import log_output
from service.providers import provider_client
from service.read_side import read_side
from service.scheduling import scheduling
from service.settings import Settings


def create_app(settings: Settings, *, store: EventStore | None = None) -> web.Application:
    """The service. With `store` given (tests) it is used as is and not closed."""
    app = web.Application(client_max_size=settings.max_body_size)
    app[keys.SETTINGS] = settings
    app[keys.SCHEMAS] = load_validators()
    app[keys.HEALTH] = {}
    app[keys.LOG_STORE] = MemoryLogStore()
    app[keys.AUTHENTICATOR] = Authenticator(settings.auth_keys)
    # Each request's end, told by the middleware: counted, and logged at INFO.
    app[REQUEST_LOG] = RequestLog(secrets=settings.auth_keys, output=log_output())
    app.on_shutdown.append(close_streams)  # streams never end by themselves

    async def log_context(app: web.Application) -> AsyncIterator[None]:
        async with event_log(settings, store) as log:
            app[keys.STORE] = log
            yield

    app.cleanup_ctx.append(limits_context)  # first: the fd limit is raised before any use
    app.cleanup_ctx.append(log_context)
    app.cleanup_ctx.append(_read_side)
    app.cleanup_ctx.append(consistency_context)
    app.cleanup_ctx.append(_providers)
    app.cleanup_ctx.append(broadcast_context)
    app.cleanup_ctx.append(history_context)
    app.cleanup_ctx.append(_deployer)
    app.cleanup_ctx.append(_scheduling)  # stops first: jobs keep running
    app.cleanup_ctx.append(metrics_context)
    setup_routes(app)
    # One middleware and one hook: each layer costs a coroutine per request.
    app.middlewares.append(
        edge(settings, app[ENDPOINTS], app[keys.AUTHENTICATOR], app[REQUEST_LOG])
    )
    app.on_response_prepare.append(edge_headers(settings))
    return app


# What runs besides the requests (service/), each held in the app while it runs.


async def _read_side(app: web.Application) -> AsyncIterator[None]:
    async with read_side(app[keys.SETTINGS], app[keys.STORE], app[keys.HEALTH]) as parts:
        app[keys.READ_MODEL], app[keys.DISPATCHER] = parts
        yield


async def _providers(app: web.Application) -> AsyncIterator[None]:
    async with provider_client(app[keys.SETTINGS].provider_timeout) as client:
        app[keys.PROVIDERS] = client
        yield


async def _deployer(app: web.Application) -> AsyncIterator[None]:
    async with deploying(app[keys.READ_MODEL], app[keys.DISPATCHER], app[keys.HEALTH]) as deployer:
        app[keys.DEPLOYER] = deployer
        yield


async def _scheduling(app: web.Application) -> AsyncIterator[None]:
    async with scheduling(
        app[keys.SETTINGS],
        app[keys.STORE],
        app[keys.READ_MODEL],
        app[keys.DISPATCHER],
        app[keys.LOG_STORE],
        app[keys.HEALTH],
    ) as state:
        app[keys.SCHEDULING] = state
        yield
