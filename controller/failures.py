"""How a command of `evenflow` fails: one line on stderr, `evenflow: <what went wrong>`, and
an exit status of replay/exits.py; never a traceback (LOG_LEVEL=DEBUG logs it, for a bug)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import NoReturn

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from eventstore.store import OutcomeUnknownError, StoreUnavailableError
from localpg.server import LocalPGError
from replay.archive import ArchiveError
from replay.exits import DATABASE_UNREACHABLE, FAILED, INTERRUPTED, OK, USAGE, CommandError
from replay.restore import RestoreError

logger = logging.getLogger("evenflow")

#: Seconds a command waits for the database of DATABASE_URL to accept a connection.
CONNECT_TIMEOUT = 5.0


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line too (its subcommands' as well:
    argparse makes them of their parent's class)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]
        where = f"{command}: " if command else ""
        self.exit(USAGE, f"evenflow: {where}{message} (see {self.prog} --help)\n")


def run(command: Callable[[], int | None]) -> int:
    """Run `command`; its exit status, or its failure's after saying what it was."""
    try:
        return command() or OK
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or OK
        status, message = FAILED, str(exc.code)  # a setting refused (service/settings.py)
    except BaseException as exc:
        status, message = explain(exc) or _unexpected(exc)
    print(f"evenflow: {message}", file=sys.stderr, flush=True)
    return status


def _unexpected(exc: BaseException) -> tuple[int, str]:
    logger.debug("the command failed", exc_info=exc)
    return FAILED, f"unexpected error: {type(exc).__name__}: {exc} (LOG_LEVEL=DEBUG logs where)"


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit status and the line that say what `exc` means for the command; None for
    an error no command expects (a bug)."""
    match exc:
        case CommandError():
            return exc.status, str(exc)
        case KeyboardInterrupt() | asyncio.CancelledError():
            return INTERRUPTED, "interrupted"
        case ArchiveError() | RestoreError() | LookupError():
            return FAILED, str(exc)
        case LocalPGError():
            first, _, more = str(exc).partition("\n")
            return FAILED, first + (f" ({more.strip().splitlines()[-1]})" if more.strip() else "")
        case asyncpg.ClientConfigurationError():
            return FAILED, f"DATABASE_URL is not a PostgreSQL URL: {exc}"
        case (
            asyncpg.PostgresConnectionError()
            | asyncpg.CannotConnectNowError()
            | asyncpg.AdminShutdownError()
            | StoreUnavailableError()
            | OutcomeUnknownError()
        ):
            return DATABASE_UNREACHABLE, f"lost the database: {exc}"
        case asyncpg.PostgresError():
            return FAILED, f"the database refused: {exc}"
        case BrokenPipeError():
            return FAILED, "the output was closed before the end"
        case OSError() if exc.filename is not None:
            return FAILED, f"{exc.filename}: {exc.strerror}"
        case OSError():
            return FAILED, exc.strerror or str(exc)
    return None


async def _connect(dsn: str) -> None:
    await (await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)).close()


def check_reachable(dsn: str) -> None:
    """Refuse, in one line, a DATABASE_URL whose database does not take a connection."""
    try:
        asyncio.run(_connect(dsn))
    except asyncpg.ClientConfigurationError as exc:
        raise CommandError(f"DATABASE_URL is not a PostgreSQL URL: {exc}") from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or "timed out"
        raise CommandError(
            f"cannot reach the database of DATABASE_URL: {reason}", DATABASE_UNREACHABLE
        ) from None
