"""`python -m bench [--quick] [--only SUITE] [--strict]`: measure, print a table, save JSON."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bench import replay, report, sse, store

Suite = Callable[[bool], tuple[list[report.Row], dict[str, Any]]]

#: Every suite by name, in the order a plain `python -m bench` runs them.
SUITES: dict[str, Suite] = {"store": store.run, "sse": sse.run, "replay": replay.run}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run this suite")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    return parser.parse_args(argv)


def run_suite(name: str, quick: bool) -> list[report.Row]:
    started_at = datetime.now(UTC)
    meta = {"quick": quick, "environment": report.environment()}
    print(f"bench {name}{' (quick)' if quick else ''}", file=sys.stderr, flush=True)
    rows, suite_meta = SUITES[name](quick)
    print()
    report.print_table(rows)
    path = report.write_results(name, rows, {**meta, **suite_meta}, started_at)
    print(f"\nresults: {os.path.relpath(path)}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missed = []
    for name in args.only or list(SUITES):
        missed += [row.figure for row in run_suite(name, args.quick) if row.ok is False]
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
