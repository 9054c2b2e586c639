"""When the service uses read-model snapshots (see projections/snapshot.py): a start-up
begins from the data directory's snapshot if the log still holds its last event, and a
shutdown writes a new one once enough of the log was folded since.

Only with the Postgres log (the in-memory one does not outlive the process). With
`--workers`, every worker starts from the snapshot and the first one writes it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from projections import snapshot
from projections.memory import MemoryReadModel
from service.settings import Settings
from service.supervisor import worker_index

logger = logging.getLogger(__name__)

#: Events folded since the snapshot (or from the start) before a shutdown writes one:
#: writing one spares about twice its time at the next start (bench/README.md).
#: EVENFLOW_SNAPSHOT_AFTER sets another number (0: never write one).
SNAPSHOT_AFTER = int(os.environ.get("EVENFLOW_SNAPSHOT_AFTER") or 200_000)


def snapshot_path(settings: Settings) -> Path:
    return settings.data_dir / "snapshots" / snapshot.FILE_NAME


async def initial_model(settings: Settings, store: EventStore) -> MemoryReadModel:
    """The model to catch up: the snapshot's, if it is one of this log, else an empty one."""
    if not isinstance(store, PostgresEventStore):
        return MemoryReadModel()
    path = snapshot_path(settings)
    began = time.perf_counter()
    loaded = snapshot.load(path)
    if loaded is None:
        return MemoryReadModel()
    at, state = loaded
    if snapshot.marker(await store.get(at[0])) != at:
        logger.info("ignoring the read-model snapshot %s: not of this log", path)
        return MemoryReadModel()
    model = snapshot.restore(at, state)
    logger.info(
        "read model loaded at event %d from %s in %.2f s",
        model.last_id,
        path,
        time.perf_counter() - began,
    )
    return model


async def save_if_due(
    settings: Settings, store: EventStore, model: MemoryReadModel, since: int
) -> None:
    """At shutdown: write a snapshot if SNAPSHOT_AFTER events were folded since `since`."""
    if not isinstance(store, PostgresEventStore) or worker_index() not in (None, 0):
        return
    if SNAPSHOT_AFTER <= 0 or model.last_id - since < SNAPSHOT_AFTER:
        return
    path = snapshot_path(settings)
    began = time.perf_counter()
    try:
        last = await store.get(model.last_id)
        if last is None:
            return
        snapshot.save(path, model, last)
    except Exception:  # a cache: failing to write it must not fail the shutdown
        logger.exception("could not write the read-model snapshot %s", path)
        return
    logger.info(
        "read model snapshot at event %d written to %s in %.2f s",
        model.last_id,
        path,
        time.perf_counter() - began,
    )
