"""A launcher for a private local PostgreSQL server (development and tests)."""

from localpg.server import LocalPG, LocalPGError, ensure_database, find_bindir

__all__ = ["LocalPG", "LocalPGError", "ensure_database", "find_bindir"]
