"""The compare suite: this checkout against another revision, in one run.

`python -m bench --only compare --base REV` checks REV out into a temporary worktree and runs
its service and this checkout's side by side on one PostgreSQL (each on a database of its
own), then measures the same requests against both, alternating which goes first from round
to round, so that a busy patch of the machine hits both alike. Each row is this checkout's
median with the base's as its baseline: a ratio above 1 is faster (below 1 for latencies and
CPU per request, which are better lower). The server's CPU per request is in the details:
on a shared machine it moves far less than requests per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from bench import server
from bench.http import FULL, QUICK, Runs, database, row, seed
from bench.report import Row
from bench.service import ROOT, Target, evenflow, need_wrk, wrk

#: The environment variable (set by `python -m bench --base REV`) naming the revision.
BASE_VARIABLE = "BENCH_BASE"


@attrs.frozen
class Side:
    name: str
    root: Path


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A detached worktree of `rev`, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="evenflow-base-"))
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", "--quiet", str(folder), rev], check=True)
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=False)


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    need_wrk()
    rev = os.environ.get(BASE_VARIABLE) or "HEAD"
    described = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    plan = QUICK if quick else FULL
    with server() as (admin_dsn, where, _pid), checkout(rev) as base_root:
        sides = (Side(f"base {described}", base_root), Side("this checkout", ROOT))
        rows = _measure(admin_dsn, plan.seconds, plan.runs, sides)
    return rows, {"database": where, "base": described, "plan": attrs.asdict(plan)}


def _measure(admin_dsn: str, seconds: float, runs: int, sides: tuple[Side, Side]) -> list[Row]:
    with contextlib.ExitStack() as stack:
        readers: list[Target] = []
        writers: list[Target] = []
        apps: list[str] = []
        for side in sides:
            reads = stack.enter_context(evenflow(stack.enter_context(database(admin_dsn)),
                                                 root=side.root))  # fmt: skip
            apps.append(asyncio.run(seed(reads.url, 100))[0][0])
            readers.append(reads)
            writers.append(stack.enter_context(
                evenflow(stack.enter_context(database(admin_dsn)), root=side.root)))  # fmt: skip
        prefix = uuid.uuid4().hex[:6]

        def post(target: Target) -> dict[str, float]:
            unique = {"BENCH_PREFIX": f"{prefix}{time.monotonic_ns()}"}
            return wrk(target, "/apps", connections=64, seconds=seconds,
                       script="create_apps.lua", env=unique)  # fmt: skip

        scenarios: dict[str, list[Callable[[], dict[str, float]]]] = {
            "POST /apps x64": [functools.partial(post, w) for w in writers],
            "GET /apps/:id x64": [
                functools.partial(wrk, r, f"/apps/{a}", connections=64, seconds=seconds)
                for r, a in zip(readers, apps, strict=True)
            ],
        }
        results: dict[tuple[str, int], Runs] = {(s, i): [] for s in scenarios for i in (0, 1)}
        for round_ in range(runs):
            for name, measures in scenarios.items():
                order = (0, 1) if round_ % 2 == 0 else (1, 0)
                for i in order:
                    got = measures[i]()
                    results[(name, i)].append(got)
                    print(f"  run {round_ + 1}/{runs} {name:<18} {sides[i].name:<16} "
                          f"{got['rps']:>9,.0f} req/s  {got['server CPU us/req']:6.1f} µs/req",
                          file=sys.stderr, flush=True)  # fmt: skip
    rows = []
    for name in scenarios:
        base = (sides[0].name, results[(name, 0)])
        rows.append(row(f"{name}: {sides[1].name} vs {sides[0].name}", results[(name, 1)],
                        baseline=base, cpu_ratio="base/this CPU per req"))  # fmt: skip
        rows.append(row(f"{name}: server CPU per request", results[(name, 1)],
                        key="server CPU us/req", unit="µs", baseline=base))  # fmt: skip
    return rows
