"""The command line's exit statuses (listed in the README, "Backup, restore and audits"), and
the error that ends a command with one line on stderr and one of them."""

from __future__ import annotations

OK = 0
#: Refused or failed: a missing file, a backup that does not check out, an unknown app, ...
FAILED = 1
#: A command line argparse could not read (argparse's own status).
USAGE = 2
#: The database of the log cannot be reached (or was lost during the command).
DATABASE_UNREACHABLE = 3
#: `replay verify` found the read model or the service drifting from the log.
DRIFT = 4
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


class CommandError(Exception):
    """A command cannot go on: `evenflow: <message>` on stderr, and exit with `status`."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status
