"""`python -m bench [--quick] [--only SUITE] [--strict]`: measure, print a table, save JSON."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bench import compare, dashboard, http, images, replay, report, sse, startup, store
from bench.chart import write_chart

Suite = Callable[[bool], tuple[list[report.Row], dict[str, Any]]]

#: Every suite by name, in the order a plain `python -m bench` runs them.
SUITES: dict[str, Suite] = {
    "store": store.run,
    "http": http.run,
    "sse": sse.run,
    "replay": replay.run,
    "startup": startup.run,
    "images": images.run,
    "dashboard": dashboard.run,
    "compare": compare.run,
}
#: Suites run only when named: compare measures this checkout against `--base`.
ON_REQUEST = frozenset({"compare"})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run this suite")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument(
        "--base",
        metavar="REV",
        help="the revision the compare suite measures this checkout against (default HEAD)",
    )
    return parser.parse_args(argv)


def run_suite(name: str, quick: bool) -> list[report.Row]:
    """One suite: its table on stderr as it ends, its results file."""
    started_at = datetime.now(UTC)
    meta = {"quick": quick, "environment": report.environment()}
    print(f"bench {name}{' (quick)' if quick else ''}", file=sys.stderr, flush=True)
    rows, suite_meta = SUITES[name](quick)
    print(file=sys.stderr)
    report.print_table(rows, out=sys.stderr)
    path = report.write_results(name, rows, {**meta, **suite_meta}, started_at)
    print(f"\nresults: {os.path.relpath(path)}\n", file=sys.stderr, flush=True)
    return rows


def print_noise(rows: Sequence[report.Row]) -> None:
    """How much the repeated runs disagreed, and how busy the machine was meanwhile."""
    spreads = sorted(row.spread.rel_stdev for row in rows if len(row.runs) > 1)
    others = sorted(row.detail["others CPU %"] for row in rows if "others CPU %" in row.detail)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nnoise: load average now {load}", end="")
    if spreads:
        noisy = sum(rsd > 0.10 for rsd in spreads)
        print(f"; run-to-run rsd median {statistics.median(spreads):.1%}, max {spreads[-1]:.1%}"
              f" ({noisy} of {len(spreads)} figures above 10 %)", end="")  # fmt: skip
    if others:
        print(
            "; CPU used besides the service and wrk during the HTTP runs (PostgreSQL's "
            f"included): median {statistics.median(others):.0f} %, max {others[-1]:.0f} %"
            " of one core",
            end="",
        )
    print()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    names = args.only or [name for name in SUITES if name not in ON_REQUEST]
    if args.base:
        os.environ[compare.BASE_VARIABLE] = args.base
    rows: list[report.Row] = []
    for name in names:
        rows += run_suite(name, args.quick)
    # The one table of the whole run, then its files: every suite's rows together.
    print(f"Evenflow benchmarks{' (quick)' if args.quick else ''}: {', '.join(names)}")
    report.print_table(rows)
    print_noise(rows)
    meta = {"quick": args.quick, "suites": names, "environment": report.environment()}
    path = report.write_results("bench", rows, meta, started_at)
    print(f"\nresults: {os.path.relpath(path)}")
    chart = write_chart(rows, started_at)
    if chart is not None:
        print(f"chart:   {os.path.relpath(chart)}")
    else:
        print("chart:   none (matplotlib is not installed: `make install` brings it)")
    missed = [row.figure for row in rows if row.ok is False]
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
