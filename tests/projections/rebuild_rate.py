"""How fast the SQL read model is rebuilt from the log, in events per second.

    python -m tests.projections.rebuild_rate [--apps 10000] [--jobs 10] [--runs 3] [--dsn URL]

Without --dsn it starts a throwaway PostgreSQL (fsync on, like a real one; --fast turns it
off). The log is synthetic (tests/projections/synthetic.py): jobs dominate, as in a busy
cluster. Each run is `replay rebuild-sql` (replay.restore.rebuild_sql): fold the whole log in
memory, then write every object into the emptied tables.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from eventstore.postgres import PostgresEventStore
from localpg import LocalPG
from localpg.server import ensure_database
from projections.sql import SqlReadModel
from replay.restore import rebuild_sql
from tests.projections.synthetic import append_synthetic


async def measure(dsn: str, apps: int, jobs: int, runs: int) -> None:
    store = await PostgresEventStore.open(dsn)
    try:
        model = SqlReadModel(store.pool)
        await model.migrate()
        if await store.last_id() == 0:
            began = time.perf_counter()
            count = await append_synthetic(store, apps, jobs)
            print(f"appended {count} events in {time.perf_counter() - began:.1f} s")
        total = len([e async for e in store.read()])
        for run in range(1, runs + 1):
            cpu, began = time.process_time(), time.perf_counter()
            await rebuild_sql(store)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
            # CPU per event does not depend on what else the machine runs; the rate does.
            print(
                f"run {run}: rebuilt {total} events in {wall:.2f} s = {total / wall:,.0f} events/s;"
                f" this process busy {100 * cpu / wall:.0f}% of the time,"
                f" {1e6 * cpu / total:.1f} us CPU per event"
                f" (at most {total / cpu:,.0f} events/s on one free core)"
            )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=10, help="jobs per app")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dsn", help="an existing database (its log is reused if not empty)")
    parser.add_argument("--fast", action="store_true", help="throwaway server with fsync off")
    args = parser.parse_args()
    if args.dsn:
        asyncio.run(measure(args.dsn, args.apps, args.jobs, args.runs))
        return
    with (
        tempfile.TemporaryDirectory(prefix="rebuild-") as root,
        LocalPG(Path(root), fast=args.fast) as pg,
    ):
        asyncio.run(ensure_database(pg.dsn(), "rebuild_rate"))
        dsn = pg.dsn("rebuild_rate")
        asyncio.run(measure(dsn, args.apps, args.jobs, args.runs))


if __name__ == "__main__":
    main()
