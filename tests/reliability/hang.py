"""A hung database for the tests: every process of a local PostgreSQL stopped (SIGSTOP), so
that connections stay open and nothing answers, then continued (SIGCONT)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from localpg import LocalPG


def process_tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


@contextlib.contextmanager
def hung(pg: LocalPG) -> Iterator[None]:
    """The server and all its processes stopped for the block; continued afterwards."""
    assert pg.pid is not None, "the server is not running"
    stopped: list[int] = []
    while fresh := [pid for pid in process_tree(pg.pid) if pid not in stopped]:
        for pid in fresh:  # until none is left running (one may fork while we stop others)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped += fresh
    try:
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
