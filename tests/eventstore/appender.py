"""A separate OS process that appends to a Postgres log; used by the ordering and kill -9 tests.

    python -m tests.eventstore.appender DSN NAME APPENDS [--concurrency C] [--batch K] [--acks]

Appends APPENDS times (C at a time) K events whose object_id is "NAME-<n>"; with --acks it
prints "ack NAME-<n>" once an append has returned, so a test knows what was acknowledged.
"""

import argparse
import asyncio
import sys

from eventstore.postgres import PostgresEventStore
from eventstore.record import NewEvent


async def main(args: argparse.Namespace) -> None:
    store = await PostgresEventStore.open(args.dsn)
    queue = iter(range(args.appends))
    print("ready", flush=True)

    async def worker() -> None:
        for n in queue:
            marker = f"{args.name}-{n}"
            events = [
                NewEvent("Marked", "marker", marker, None, b'{"part":%d}' % i)
                for i in range(args.batch)
            ]
            await store.append(events)
            if args.acks:
                sys.stdout.write(f"ack {marker}\n")
                sys.stdout.flush()

    await asyncio.gather(*[worker() for _ in range(args.concurrency)])
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("name")
    parser.add_argument("appends", type=int)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--acks", action="store_true")
    asyncio.run(main(parser.parse_args()))
