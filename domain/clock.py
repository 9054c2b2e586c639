"""The clock commands are decided at: read where a command is built, never in a decider."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The time a command is decided at; Postgres keeps microseconds, and so do we."""
    return datetime.now(UTC)
