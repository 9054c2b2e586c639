"""`python -m controller` / `evenflow`: serve the API (and, as subcommands, operate on the log:
backups, the replay tool, API keys)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import attrs

from controller import failures, server
from controller.access_log import setup_logging
from controller.app import create_app
from controller.server import SHUTDOWN_TIMEOUT
from localpg import LocalPG, ensure_database
from replay.cli import Hooks
from replay.cli import add_parser as add_replay_parser
from replay.exits import USAGE, CommandError
from replay.progress import Progress
from service.auth_key import client_key, key_file, with_keys
from service.backup import backup_database, check_output
from service.key_commands import add_parser as add_keys_parser
from service.log_format import LOG_FORMATS, hide_keys_in_logs
from service.metrics.workers import serve_merged
from service.settings import EVENFLOW_VERSION, Settings
from service.supervisor import Supervisor, exit_when_orphaned, worker_argv, worker_index

logger = logging.getLogger("evenflow")


def auth_keys(settings: Settings) -> Settings:
    """AUTH_KEY, or a key generated once and kept in the data folder (printed only then)."""
    settings, generated = with_keys(settings)
    if generated:
        print(
            f"evenflow: a new API key, kept in {key_file(settings)}: {generated}  "
            "(set AUTH_KEY to choose your own)",
            file=sys.stderr,
            flush=True,
        )
    return settings


def url(host: str, port: int, tls: bool) -> str:
    """The address to give a client: `localhost` for all of this machine's addresses."""
    shown = "localhost" if host in ("", "0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def announce(settings: Settings, host: str, port: int) -> None:
    """What an operator needs on a start: where to send requests, where the key is (a log
    record, as every line of the service's but the new key's)."""
    kept = "AUTH_KEY" if os.environ.get("AUTH_KEY") else key_file(settings)
    address = url(host, port, settings.tls_cert is not None)
    logger.info("serving %s, API key in %s", address, kept)
    if settings.metrics_port:
        metrics = url(settings.metrics_host, settings.metrics_port, tls=False)
        logger.info("metrics on %s/metrics", metrics)
    # The dashboard's address goes here once `/` serves one.


def local_database_dir() -> Path:
    return Path(os.environ.get("LOCALPG_DIR") or ".localpg").resolve()


def default_workers(settings: Settings) -> int:
    """One per core; one when this service runs the local scheduler, whose host and app
    logs live in the process that leads (GET /apps/:app/log answers from its memory)."""
    return 1 if settings.scheduler == "local" else os.cpu_count() or 1


def serve(args: argparse.Namespace) -> None:
    if args.worker:  # one of `--workers N`: the parent resolved the settings
        exit_when_orphaned(SHUTDOWN_TIMEOUT + 2)
        settings = Settings.from_env()
        _run(settings, args.host or settings.host, args.port or settings.port, reuse_port=True)
        return
    settings = Settings.from_env()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = default_workers(settings) if args.workers is None else args.workers
    if workers < 1:
        raise CommandError("--workers must be at least 1", USAGE)
    if workers > 1 and settings.scheduler == "local":
        logger.warning(
            "%d workers with SCHEDULER=local: one schedules (the advisory lock's holder), and "
            "GET /apps/:app/log answers only through that one",
            workers,
        )
    if settings.database_url:
        failures.check_reachable(settings.database_url)
        _serve(settings, host, port, workers)
        return
    # No DATABASE_URL: an embedded PostgreSQL in the checkout, stopped when we exit (also
    # after kill -9: the server gets a parent-death signal). Started here, in the main
    # thread, before the event loop; with workers, this process stays its parent.
    pg = LocalPG(local_database_dir())
    if _accepts_connections(pg.dsn()):
        raise CommandError(
            f"the embedded PostgreSQL in {pg.root} is running for another service: stop it "
            "first (or give this one its own LOCALPG_DIR, EVENFLOW_DATA_DIR and PORT)"
        )
    with pg:
        asyncio.run(ensure_database(pg.dsn(), "evenflow"))
        logger.debug("embedded PostgreSQL in %s", pg.data_dir)
        _serve(attrs.evolve(settings, database_url=pg.dsn("evenflow")), host, port, workers)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    # Once the database is there, and here: every worker gets the same key.
    settings = auth_keys(settings)
    if workers == 1:
        _run(settings, host, port)
        return
    assert settings.database_url is not None
    env = os.environ | {"DATABASE_URL": settings.database_url,
                        "AUTH_KEY": ",".join(settings.auth_keys)}  # fmt: skip
    announce(settings, host, port)  # before they listen: the workers do not say when they do
    logger.debug("serving on %s:%d with %d workers", host, port, workers)
    # A worker's shutdown: its requests (up to twice SHUTDOWN_TIMEOUT), then its clean-up,
    # which may write a read-model snapshot (seconds per million events folded since the last).
    grace = 2 * SHUTDOWN_TIMEOUT + 15
    if settings.metrics_port:  # one scrape for all the workers
        serve_merged(settings.metrics_host, settings.metrics_port, os.getpid(), workers)
    status = Supervisor(workers, worker_argv(host, port), env, grace).run()
    if status:
        raise SystemExit(status)


def _run(settings: Settings, host: str, port: int, *, reuse_port: bool = False) -> None:
    ssl_context = None
    if settings.tls_cert and settings.tls_key:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
    # Young collections every 5,000 new containers, not 700: a request allocates dozens, and
    # under sustained writes the collector took a large share of the time and of p99 (see
    # bench/README.md). The state folded at start-up is frozen (memory.py).
    gc.set_threshold(5_000, 10, 10)
    hide_keys_in_logs(settings.auth_keys)
    server.run(
        create_app(settings),
        settings,
        host,
        port,
        ssl_context=ssl_context,
        reuse_port=reuse_port,
        # A worker's parent announced the service.
        listening=None if worker_index() is not None else lambda p: announce(settings, host, p),
    )


@contextlib.contextmanager
def database() -> Iterator[str]:
    """The database of the log for a command: DATABASE_URL, or the embedded one (shared with
    a running `serve`, else started for the command's duration)."""
    database_url = Settings.from_env().database_url
    if database_url:
        failures.check_reachable(database_url)
        yield database_url
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
    check_output(args.output)
    with database() as dsn, Progress() as shown:
        written = asyncio.run(backup_database(dsn, args.output, shown))
    if written is not None:
        print(f"backup written to {written}", file=sys.stderr)


def service_key() -> str | None:
    """The key of the service on this machine, found as the service finds it."""
    return client_key(Settings.from_env())


def parser() -> argparse.ArgumentParser:
    version = failures.Parser(add_help=False)
    version.add_argument("--version", action="version", version=f"evenflow {EVENFLOW_VERSION}")
    root = failures.Parser(prog="evenflow", description=__doc__, parents=[version])
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the controller API", parents=[version])
    run.add_argument("--host", help="address to listen on (default 0.0.0.0, or $HOST)")
    run.add_argument("--port", type=int, help="port (default $PORT, else 8080)")
    run.add_argument(
        "--workers",
        type=int,
        help="service processes sharing the port (default: one per core; 1 with SCHEDULER=local)",
    )
    run.add_argument(
        "--worker", action="store_true", help=argparse.SUPPRESS
    )  # see service/supervisor.py
    run.set_defaults(func=serve)
    dump = commands.add_parser(
        "backup", help="write a backup of the log (as GET /backup)", parents=[version]
    )
    dump.add_argument("-o", "--output", required=True, help="file or folder; - for stdout")
    dump.set_defaults(func=backup)
    add_replay_parser(commands, Hooks(database, service_key), [version])
    add_keys_parser(commands, database, [version])
    return root


def main(argv: Sequence[str] | None = None) -> None:
    """The program: the exit status is that of replay/exits.py (README: "Backup, restore
    and audits"), a failure one line on stderr."""
    args = parser().parse_args(argv)
    sys.exit(failures.run(lambda: _command(args)))


def _command(args: argparse.Namespace) -> int | None:
    level = os.environ.get("LOG_LEVEL") or "INFO"
    if level.upper() not in logging.getLevelNamesMapping():
        raise CommandError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    log_format = os.environ.get("LOG_FORMAT") or "text"
    if log_format not in LOG_FORMATS:
        raise CommandError(f"LOG_FORMAT must be text or json, got {log_format!r}")
    setup_logging(level, log_format)
    status: int | None = args.func(args)
    return status


if __name__ == "__main__":
    main()
