"""This process's metrics: read from its parts when scraped, and served.

A lone service serves them on METRICS_HOST:METRICS_PORT (GET /metrics); a worker of
`serve --workers N` on its socket for the parent, which serves all of theirs merged
(service/metrics/workers.py). Reading them costs the scrape a few queries (the log's head,
the SQL read model's position) and a count of the jobs and deployments folded.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from controller import keys
from controller.access_log import REQUEST_LOG
from controller.broadcast import BROADCASTER
from controller.limits import STREAM_SLOTS
from eventstore.postgres import PostgresEventStore
from eventstore.store import StoreUnavailableError
from projections.sql import SqlReadModel
from service.metrics.families import Reading, render
from service.metrics.workers import worker_socket
from service.supervisor import worker_index

logger = logging.getLogger("evenflow.metrics")


async def reading(app: web.Application) -> Reading:
    """The process's figures now."""
    store, model = app[keys.STORE], app[keys.READ_MODEL]
    folded = model.last_id
    head: int | None = None
    lag_seconds = 0.0
    try:
        head = await store.last_id()
        if head > folded:
            async for oldest in store.read(folded, until=head, page_size=1):
                lag_seconds = max(time.time() - oldest.created_at.timestamp(), 0.0)
                break
    except StoreUnavailableError:
        pass
    broadcaster = app.get(BROADCASTER)
    subscribers, behind = broadcaster.lag() if broadcaster is not None else (0, 0)
    state = model.state
    scheduling = app.get(keys.SCHEDULING)
    scheduler = scheduling.scheduler if scheduling is not None else None
    return Reading(
        worker=str(worker_index() or 0),
        requests=app[REQUEST_LOG].stats,
        folded=folded,
        head=head,
        fold_lag_seconds=lag_seconds,
        appends=store.stats if isinstance(store, PostgresEventStore) else None,
        subscribers=subscribers,
        subscriber_lag=behind,
        streams=len(app[STREAM_SLOTS].holders),
        sql_position=await _sql_position(store),
        jobs=Counter(str(job.state) for job in state.jobs.values()),
        deployments=Counter(str(d.status) for d in state.deployments.values()),
        scheduling=scheduling.leading if scheduling is not None and scheduling.enabled else None,
        restarts=scheduler.restarts if scheduler is not None else 0,
        pools=_pools(store),
    )


async def _sql_position(store: object) -> int | None:
    # The position is the database's, the same seen from any worker: one reports it.
    if not isinstance(store, PostgresEventStore) or worker_index() not in (None, 0):
        return None
    try:
        return await SqlReadModel(store.pool).last_event_id()
    except Exception as exc:  # not migrated yet, or the database is away: not known now
        logger.debug("no SQL read model position: %r", exc)
        return None


def _pools(store: object) -> dict[str, tuple[int, int]]:
    if not isinstance(store, PostgresEventStore):
        return {}
    pools = {"main": store.pool, "reads": store.read_pool}
    return {name: (p.get_size(), p.get_size() - p.get_idle_size()) for name, p in pools.items()}


def metrics_app(service: web.Application) -> web.Application:
    """GET /metrics of `service`, as an application of its own (its own listener)."""

    async def scrape(_request: web.Request) -> web.Response:
        body = render(await reading(service))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def metrics_context(app: web.Application) -> AsyncIterator[None]:
    """The metrics listener while the service runs (see the module's docstring)."""
    settings = app[keys.SETTINGS]
    if not settings.metrics_port:
        yield
        return
    runner = web.AppRunner(metrics_app(app), access_log=None)
    await runner.setup()
    try:
        site = _site(runner, settings.metrics_host, settings.metrics_port)
        if site is not None:
            try:
                await site.start()
            except OSError as exc:  # metrics are not worth a failed start
                logger.warning("no metrics listener on %s: %s", site.name, exc)
        yield
    finally:
        await runner.cleanup()


def _site(runner: web.AppRunner, host: str, port: int) -> web.BaseSite | None:
    index = worker_index()
    if index is None:
        return web.TCPSite(runner, host, port)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(worker_socket(os.getppid(), index))
    except OSError as exc:
        sock.close()
        logger.warning("no metrics socket for worker %d: %s", index, exc)
        return None
    return web.SockSite(runner, sock)
