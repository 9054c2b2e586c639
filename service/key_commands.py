"""`evenflow keys create|list|revoke`: API keys managed in the log (service/keyring.py).

The secret of a new key goes to stdout once, and nowhere else; results are text on a
terminal and JSON otherwise (or with --json). A refusal (a taken name, an unknown app, no
such key) is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from commands.errors import DomainError
from domain.clock import now
from domain.keys import BOOTSTRAP_PREFIX, Key, Scope, expiry
from eventstore.postgres import PostgresEventStore
from replay.cli import emit
from replay.exits import OK, CommandError
from service import keyring

Database = Callable[[], AbstractContextManager[str]]


def _expires(text: str) -> str:
    try:
        expiry(text, now())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration (30d; s, m, h, d or w) nor an RFC 3339 time: {text!r}"
        ) from None
    return text


def add_parser(
    commands: Any, database: Database, parents: list[argparse.ArgumentParser] | None = None
) -> None:
    """Add `keys` and its subcommands to the program's subparsers."""
    common = parents or []
    output = argparse.ArgumentParser(add_help=False, parents=common)
    output.add_argument("--json", action="store_true", help="JSON output, even on a terminal")
    keys = commands.add_parser("keys", help="make, list and revoke API keys", parents=common)
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    p = sub.add_parser("create", parents=[output], help="make a key; its secret is shown once")
    p.add_argument("name", help="what the audit names the key's actions by (given once, ever)")
    p.add_argument("--scope", required=True, choices=[str(s) for s in Scope])
    p.add_argument(
        "--app", action="append", metavar="APP", help="limit the key to this app (repeatable)"
    )
    p.add_argument(
        "--expires", type=_expires, metavar="WHEN", help="a duration (30d) or an RFC 3339 time"
    )
    sub.add_parser("list", parents=[output], help="the keys made in the log, revoked ones too")
    p = sub.add_parser("revoke", parents=[output], help="revoke a key, on every service")
    p.add_argument("name")
    keys.set_defaults(func=lambda args: run(args, database))


def run(args: argparse.Namespace, database: Database) -> int:
    with database() as dsn:
        return asyncio.run(_run(args, dsn))


async def _run(args: argparse.Namespace, dsn: str) -> int:
    store = await PostgresEventStore.open(dsn, min_size=1, max_size=2)
    try:
        return await COMMANDS[args.keys_command](args, store)
    except DomainError as exc:
        raise CommandError(exc.message) from None
    finally:
        await store.close()


async def _create(args: argparse.Namespace, store: PostgresEventStore) -> int:
    moment = now()
    expires_at = expiry(args.expires, moment) if args.expires else None
    apps = tuple(args.app) if args.app else None
    made = await keyring.create(store, args.name, Scope(args.scope), moment, apps, expires_at)
    doc = _shown(made.key) | {"secret": made.secret}
    emit(
        args,
        doc,
        lambda d: (
            f"key {d['name']} made ({d['scope']}); its secret, shown this once:\n{d['secret']}\n"
        ),
    )
    return OK


async def _list(args: argparse.Namespace, store: PostgresEventStore) -> int:
    docs = [_shown(key) for key in await keyring.keys(store)]
    emit(args, docs, _list_text)
    return OK


async def _revoke(args: argparse.Namespace, store: PostgresEventStore) -> int:
    if args.name.startswith(BOOTSTRAP_PREFIX):
        raise CommandError(f"{args.name} is a key of AUTH_KEY: remove it from AUTH_KEY instead")
    await keyring.revoke(store, args.name, now())
    emit(args, {"revoked": args.name}, lambda d: f"key {d['revoked']} revoked\n")
    return OK


COMMANDS = {"create": _create, "list": _list, "revoke": _revoke}


def _shown(key: Key) -> dict[str, Any]:
    return key.to_json(with_hash=False)


def _list_text(docs: list[dict[str, Any]]) -> str:
    if not docs:
        return "no keys made in the log (AUTH_KEY's are not listed here)\n"
    lines = []
    for d in docs:
        apps = f"apps {','.join(d['apps'])}" if "apps" in d else "every app"
        state = f"revoked {d['revoked_at']}" if "revoked_at" in d else "live"
        expires = f", expires {d['expires_at']}" if "expires_at" in d else ""
        lines.append(f"{d['name']:<24} {d['scope']:<7} {state}{expires}, {apps}")
    return "\n".join(lines) + "\n"
