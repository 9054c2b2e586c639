"""The aiohttp application factory: the composition root of the running service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from applog.store import MemoryLogStore
from commands.dispatch import Dispatcher
from controller import keys
from controller.broadcast import broadcast_context, close_streams
from controller.consistency import add_position_header, consistency_context, consistent
from controller.cors import add_cors_headers
from controller.deployer import deployer_context
from controller.limits import limits_context, release_stream_slot
from controller.middlewares import errors, guard
from controller.openapi import build_on_startup
from controller.projector import sql_projector_context
from controller.providers import http_client_context
from controller.routes import setup_routes
from controller.scheduling import scheduling_context
from controller.settings import Settings
from controller.snapshots import initial_model, save_if_due
from controller.validation import load_validators
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from projections.runner import follow

logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, store: EventStore | None = None) -> web.Application:
    """The service. With `store` given (tests) it is used as is and not closed."""
    app = web.Application(
        # errors outermost: a preflight or an authentication raises nothing it would catch.
        # consistent innermost: only authenticated requests wait for the log or learn its head.
        middlewares=[errors, guard, release_stream_slot, consistent],
        client_max_size=settings.max_body_size,
    )
    app[keys.SETTINGS] = settings
    app[keys.SCHEMAS] = load_validators()
    app[keys.HEALTH] = {}
    app[keys.LOG_STORE] = MemoryLogStore()
    app.on_response_prepare.append(add_cors_headers)
    app.on_response_prepare.append(add_position_header)
    app.on_startup.append(build_on_startup)  # GET /openapi.json, from the final route table
    app.on_shutdown.append(close_streams)  # streams never end by themselves

    async def log_context(app: web.Application) -> AsyncIterator[None]:
        async with _event_log(settings, store) as log:
            app[keys.STORE] = log
            yield

    app.cleanup_ctx.append(limits_context)  # first: the fd limit is raised before any use
    app.cleanup_ctx.append(log_context)
    app.cleanup_ctx.append(_read_side)
    app.cleanup_ctx.append(consistency_context)
    app.cleanup_ctx.append(http_client_context)
    app.cleanup_ctx.append(broadcast_context)
    app.cleanup_ctx.append(sql_projector_context)
    app.cleanup_ctx.append(deployer_context)
    app.cleanup_ctx.append(scheduling_context)  # stops first: jobs keep running
    setup_routes(app)
    return app


@contextlib.asynccontextmanager
async def _event_log(settings: Settings, given: EventStore | None) -> AsyncIterator[EventStore]:
    if given is not None:
        yield given
        return
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    store = await PostgresEventStore.open(settings.database_url)
    try:
        yield store
    finally:
        await store.close()


async def _read_side(app: web.Application) -> AsyncIterator[None]:
    """Fold the log (from a snapshot, if any), then keep folding it; run the dispatcher on
    top. At shutdown, write a new snapshot if one is due."""
    store = app[keys.STORE]
    model = await initial_model(app[keys.SETTINGS], store)
    since = model.last_id
    count = await model.catch_up(store)
    logger.info("read model at event %d (%d events folded)", model.last_id, count)
    dispatcher = Dispatcher(store, model)
    dispatcher.start()
    app[keys.READ_MODEL] = model
    app[keys.DISPATCHER] = dispatcher
    follower = asyncio.create_task(_watch(app, "read_model", follow(store, model)))
    yield
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower
    await dispatcher.stop()
    await save_if_due(app[keys.SETTINGS], store, model, since)


async def _watch(app: web.Application, name: str, work: object) -> None:
    """Run a background task; if it fails, say so in the health status instead of serving
    stale answers silently."""
    try:
        await work  # type: ignore[misc]
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.exception("background task %s failed", name)
        app[keys.HEALTH][name] = f"failed: {exc!r}"
