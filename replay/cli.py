"""`evenflow replay ...` (`python -m controller replay ...`): the replay tool's command line.

Every command reads the log from the database (DATABASE_URL, or the embedded local one) or,
with `--from FILE`, from a backup. Results go to stdout: JSON when stdout is not a terminal
or with --json, else text. Progress (on a terminal) and notes go to stderr; a failure is a
CommandError (or another exception) for the program to report, with a status of exits.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs
import orjson

from domain.objects import JSON
from eventstore.postgres import PostgresEventStore
from projections.sql import SqlReadModel
from replay.audit import AuditQuery, audit_entries, audit_text
from replay.exits import DRIFT, OK, CommandError
from replay.fold import rebuild
from replay.history import app_events, find_app_id, history_text, timeline
from replay.progress import Progress
from replay.restore import rebuild_sql, restore
from replay.source import ArchiveSource, LogSource
from replay.verify import MAX_LISTED, Service, verify_read_model, verify_service
from replay.views import state_document, state_text

#: Opens the database the commands work on; yields its DSN.
Database = Callable[[], AbstractContextManager[str]]
#: A command: its arguments, the database's DSN (None: it reads a backup), its progress.
Command = Callable[[argparse.Namespace, str | None, Progress], Coroutine[Any, Any, int]]


@attrs.frozen
class Hooks:
    """What the program gives the replay commands."""

    database: Database
    #: The key of the service on this machine, found as the service finds it (AUTH_KEY, the
    #: data directory's key file); None if there is none.
    service_key: Callable[[], str | None]


def moment(text: str) -> datetime:
    """An RFC 3339 time; one without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def event_id(text: str) -> int:
    """An event id: 0 (before the first event) or more."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not an event id (0 or more): {text!r}")
    return int(text)


def add_parser(
    commands: Any, hooks: Hooks, parents: list[argparse.ArgumentParser] | None = None
) -> None:
    """Add `replay` and its subcommands to the program's subparsers; `parents` give each
    of them the program's common options."""
    common = parents or []
    output = argparse.ArgumentParser(add_help=False, parents=common)
    output.add_argument("--json", action="store_true", help="JSON output, even on a terminal")
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="read the log from this backup instead of the database",
    )
    replay = commands.add_parser(
        "replay",
        help="restore, rebuild and inspect state from the log",
        description=__doc__,
        parents=common,
    )
    sub = replay.add_subparsers(dest="replay_command", required=True, metavar="COMMAND")
    p = sub.add_parser("restore", parents=[output], help="load a backup into an empty database")
    p.add_argument("file", help="the backup (.tar) to load")
    p.add_argument("--force", action="store_true", help="replace the events the database holds")
    p = sub.add_parser(
        "verify",
        parents=[output, source],
        help="compare the log's state with the SQL read model and a service",
    )
    p.add_argument("--url", help="also compare the answers of the service at this URL")
    p.add_argument(
        "--key",
        help="the service's API key (default: AUTH_KEY, else the data directory's auth_key)",
    )
    p = sub.add_parser("state", parents=[output, source], help="the state at a point of the log")
    at = p.add_mutually_exclusive_group()
    at.add_argument("--at", type=event_id, metavar="EVENT_ID", help="after this event")
    at.add_argument("--at-time", type=moment, metavar="TIME", help="at this time (RFC 3339)")
    p.add_argument("--app", metavar="NAME_OR_ID", help="only this app")
    p = sub.add_parser("history", parents=[output, source], help="an app's timeline")
    p.add_argument("--app", required=True, metavar="NAME_OR_ID")
    p = sub.add_parser("audit", parents=[output, source], help="who did what, and when")
    p.add_argument(
        "--actor", metavar="NAME", help="a key's name, or a component (scheduler, deployer, ...)"
    )
    p.add_argument("--app", metavar="NAME_OR_ID", help="only this app's events")
    p.add_argument("--since", type=moment, metavar="TIME", help="at or after (RFC 3339)")
    p.add_argument("--until", type=moment, metavar="TIME", help="at or before (RFC 3339)")
    sub.add_parser("rebuild-sql", parents=[output], help="rebuild the SQL read model from the log")
    replay.set_defaults(func=lambda args: run(args, hooks))


def run(args: argparse.Namespace, hooks: Hooks) -> int:
    """Run one replay command; returns its exit status (exits.py). What can be refused
    without the database is refused before it is opened."""
    command = COMMANDS[args.replay_command]
    if args.replay_command == "restore":
        Path(args.file).open("rb").close()  # a missing or unreadable file: said at once
    if getattr(args, "url", None) and not args.key:
        args.key = hooks.service_key()
        if not args.key:
            raise CommandError(
                f"no API key for {args.url}: set AUTH_KEY, run in the service's folder "
                "(EVENFLOW_DATA_DIR/auth_key), or pass --key"
            )
    with Progress() as shown:
        if getattr(args, "from_file", None) and args.replay_command != "restore":
            return asyncio.run(command(args, None, shown))
        with hooks.database() as dsn:
            return asyncio.run(command(args, dsn, shown))


@contextlib.asynccontextmanager
async def open_source(args: argparse.Namespace, dsn: str | None) -> AsyncIterator[LogSource]:
    if args.from_file:
        yield ArchiveSource(args.from_file)
        return
    assert dsn is not None
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=2)
    try:
        yield store
    finally:
        await store.close()


def emit(args: argparse.Namespace, doc: Any, text: Callable[[Any], str]) -> None:
    if args.json or not sys.stdout.isatty():
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(text(doc))
    sys.stdout.flush()


async def state_command(args: argparse.Namespace, dsn: str | None, shown: Progress) -> int:
    async with open_source(args, dsn) as source:
        head = await source.last_id()
        if args.at is not None and args.at > head:
            raise CommandError(f"--at {args.at} is beyond the log's last event, {head}")
        shown.stage("folding the log", head if args.at is None else args.at)
        rebuilt = await rebuild(source, until=args.at, at_time=args.at_time, progress=shown)
        shown.done()
    emit(args, await state_document(rebuilt, args.app), state_text)
    return OK


async def history_command(args: argparse.Namespace, dsn: str | None, shown: Progress) -> int:
    async with open_source(args, dsn) as source:
        head = await source.last_id()
        found = await find_app_id(source, args.app, shown.stage("finding the app", head))
        shown.done()
        if found is None:
            raise CommandError(f"no app {args.app!r} in the log")
        app_id, name = found
        entries = timeline(
            await app_events(source, app_id, shown.stage("reading its events", head))
        )
        shown.done()
    doc: JSON = {"app": {"id": app_id, "name": name}, "events": entries}
    emit(args, doc, lambda d: history_text(app_id, name, d["events"]))
    return OK


async def audit_command(args: argparse.Namespace, dsn: str | None, shown: Progress) -> int:
    async with open_source(args, dsn) as source:
        head = await source.last_id()
        app_id = None
        if args.app is not None:
            found = await find_app_id(source, args.app, shown.stage("finding the app", head))
            shown.done()
            if found is None:
                raise CommandError(f"no app {args.app!r} in the log")
            app_id = found[0]
        query = AuditQuery(args.actor, app_id, args.since, args.until)
        entries = await audit_entries(source, query, shown.stage("reading the log", head))
        shown.done()
    emit(args, {"entries": entries}, lambda d: audit_text(d["entries"]))
    return OK


async def verify_command(args: argparse.Namespace, dsn: str | None, shown: Progress) -> int:
    found: list[str] = []
    notes: list[str] = []
    async with open_source(args, dsn) as source:
        if isinstance(source, PostgresEventStore):
            try:
                more, said = await verify_read_model(
                    source, SqlReadModel(source.pool), progress=shown
                )
                found, notes = found + more, notes + said
            except asyncpg.UndefinedTableError:
                notes.append("this database has no SQL read model yet")
        elif not args.url:  # only the backup: reading it whole checks it, folding it too
            await rebuild(
                source, progress=shown.stage("checking the backup", await source.last_id())
            )
        if args.url:
            more, said = await verify_service(source, Service(args.url, args.key), shown)
            found, notes = found + more, notes + said
        shown.done()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    doc = {"ok": not found, "differences": found, "notes": notes}
    emit(args, doc, _verify_text)
    return DRIFT if found else OK


def _verify_text(doc: JSON) -> str:
    if doc["ok"]:
        return "ok: no drift\n"
    listed = doc["differences"][:MAX_LISTED]
    more = len(doc["differences"]) - len(listed)
    tail = [f"... and {more} more"] if more else []
    return "\n".join([f"DRIFT: {len(doc['differences'])} differences", *listed, *tail]) + "\n"


async def restore_command(args: argparse.Namespace, dsn: str | None, shown: Progress) -> int:
    assert dsn is not None
    manifest = await restore(dsn, args.file, force=args.force, progress=shown)
    doc = {
        "restored_events": manifest.event_count,
        "last_event_id": manifest.last_event_id,
        "log_sha256": manifest.log_sha256,
        "backup_created_at": manifest.created_at,
    }
    emit(
        args,
        doc,
        lambda d: (
            f"restored {d['restored_events']:,} events (up to event "
            f"{d['last_event_id']}), sha256 {d['log_sha256']} verified\n"
        ),
    )
    return OK


async def rebuild_sql_command(args: argparse.Namespace, dsn: str | None, shown: Progress) -> int:
    assert dsn is not None
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=4)
    try:
        head = await store.last_id()
        position = await rebuild_sql(store, shown.stage("rebuilding the SQL read model", head))
    finally:
        shown.done()
        await store.close()
    emit(
        args,
        {"sql_read_model_at": position},
        lambda d: f"SQL read model rebuilt up to event {d['sql_read_model_at']}\n",
    )
    return OK


COMMANDS: dict[str, Command] = {
    "restore": restore_command,
    "verify": verify_command,
    "state": state_command,
    "history": history_command,
    "audit": audit_command,
    "rebuild-sql": rebuild_sql_command,
}
