"""Application logs (job output): not events, so kept apart from the log of record."""

from applog.store import LINES_PER_APP, LogLine, LogStore, MemoryLogStore

__all__ = ["LINES_PER_APP", "LogLine", "LogStore", "MemoryLogStore"]
