"""`python -m controller` / `evenflow`: serve the API (and, as subcommands, operate on the log)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs
from aiohttp import web

from controller.access_log import AccessLogger
from controller.app import create_app
from controller.backup import backup_database
from controller.settings import Settings
from localpg import LocalPG, ensure_database
from replay.cli import add_parser as add_replay_parser

logger = logging.getLogger("evenflow")

#: Seconds SIGTERM/SIGINT may take: in-flight requests finish, streams are closed.
SHUTDOWN_TIMEOUT = 8.0


def auth_keys(settings: Settings) -> Settings:
    """AUTH_KEY, or a key generated once and kept in the data folder (printed at start-up)."""
    if settings.auth_keys:
        return settings
    path = settings.data_dir / "auth_key"
    if path.exists():
        key = path.read_text().strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    print(f"AUTH_KEY={key}  (kept in {path}; set AUTH_KEY to choose your own)", file=sys.stderr)
    return attrs.evolve(settings, auth_keys=(key,))


def local_database_dir() -> Path:
    return Path(os.environ.get("LOCALPG_DIR") or ".localpg").resolve()


def serve(args: argparse.Namespace) -> None:
    settings = auth_keys(Settings.from_env())
    host = args.host or settings.host
    port = args.port or settings.port
    if settings.database_url:
        _run(settings, host, port)
        return
    # No DATABASE_URL: an embedded PostgreSQL in the checkout, stopped when we exit (also
    # after kill -9: the server gets a parent-death signal). Started here, in the main
    # thread, before the event loop.
    with LocalPG(local_database_dir()) as pg:
        asyncio.run(ensure_database(pg.dsn(), "evenflow"))
        logger.info("embedded PostgreSQL in %s", pg.data_dir)
        _run(attrs.evolve(settings, database_url=pg.dsn("evenflow")), host, port)


def _run(settings: Settings, host: str, port: int) -> None:
    ssl_context = None
    if settings.tls_cert and settings.tls_key:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        ssl_context=ssl_context,
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        print=lambda text: logger.info("%s", text.strip()),
    )


@contextlib.contextmanager
def database() -> Iterator[str]:
    """The database of the log for a command: DATABASE_URL, or the embedded one (shared with
    a running `serve`, else started for the command's duration)."""
    url = Settings.from_env().database_url
    if url:
        yield url
        return
    pg = LocalPG(local_database_dir())
    if _accepts_connections(pg.dsn()):
        asyncio.run(ensure_database(pg.dsn(), "evenflow"))
        yield pg.dsn("evenflow")
        return
    with pg:
        asyncio.run(ensure_database(pg.dsn(), "evenflow"))
        yield pg.dsn("evenflow")


def _accepts_connections(dsn: str) -> bool:
    async def probe() -> None:
        await (await asyncpg.connect(dsn, timeout=2)).close()

    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    return True


def backup(args: argparse.Namespace) -> None:
    with database() as dsn:
        written = asyncio.run(backup_database(dsn, args.output))
    if written is not None:
        print(f"backup written to {written}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="evenflow", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the controller API")
    run.add_argument("--host", help="address to listen on (default 0.0.0.0, or $HOST)")
    run.add_argument("--port", type=int, help="port (default $PORT, else 8080)")
    run.set_defaults(func=serve)
    dump = commands.add_parser("backup", help="write a backup of the log (as GET /backup)")
    dump.add_argument("-o", "--output", required=True, help="file or folder; - for stdout")
    dump.set_defaults(func=backup)
    add_replay_parser(commands, database)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
