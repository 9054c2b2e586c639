"""Benchmark results: rows built from repeated runs, the printed table, and the JSON files.

Generic on purpose: a suite (the store today, HTTP later) hands over a list of `Row`s and
gets one table on stdout and `results/<suite>-<UTC timestamp>.json` plus
`results/latest-<suite>.json`.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import attrs
import orjson

RESULTS_DIR = Path(__file__).parent / "results"


@attrs.frozen
class Target:
    """A pass mark: `on` the row's value or its ratio to the baseline, `op` threshold."""

    on: Literal["value", "ratio"]
    op: Literal[">=", "<="]
    threshold: float

    def met(self, value: float, ratio: float | None) -> bool | None:
        """Whether the row meets it; None when there is no ratio to judge."""
        measured = value if self.on == "value" else ratio
        if measured is None or math.isnan(measured):
            return None
        return measured >= self.threshold if self.op == ">=" else measured <= self.threshold

    @property
    def text(self) -> str:
        sign = self.op
        if self.on == "ratio":
            return f"{sign} {self.threshold:g}x baseline"
        return f"{sign} {_number(self.threshold)}"


@attrs.frozen
class Spread:
    """How far the repeated runs of one figure lie apart."""

    min: float
    max: float
    rel_stdev: float  # sample stdev / mean; 0 for a single run

    @classmethod
    def of(cls, runs: Sequence[float]) -> Spread:
        mean = statistics.fmean(runs)
        stdev = statistics.stdev(runs) if len(runs) > 1 else 0.0
        return cls(min(runs), max(runs), stdev / mean if mean else 0.0)


@attrs.frozen
class Row:
    """One figure: the median of its runs, optionally against a baseline and a target."""

    figure: str
    unit: str
    runs: tuple[float, ...]
    baseline_name: str | None = None
    baseline_value: float | None = None
    target: Target | None = None
    # Secondary measurements that explain the figure (latency, batch size, ...).
    detail: dict[str, float] = attrs.field(factory=dict)

    @property
    def value(self) -> float:
        return statistics.median(self.runs)

    @property
    def spread(self) -> Spread:
        return Spread.of(self.runs)

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def ok(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "unit": self.unit,
            "value": self.value,
            "baseline_name": self.baseline_name,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio,
            "target": None
            if self.target is None
            else {**attrs.asdict(self.target), "text": self.target.text},
            "ok": self.ok,
            "runs": list(self.runs),
            "spread": attrs.asdict(self.spread),
            "detail": self.detail,
        }


def _number(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _spread_text(row: Row) -> str:
    s = row.spread
    if len(row.runs) == 1:
        return "1 run"
    return f"{_number(s.min)}..{_number(s.max)} (rsd {s.rel_stdev:.1%})"


def _baseline_text(row: Row) -> str:
    if row.baseline_value is None:
        return "-"
    return f"{_number(row.baseline_value)} ({row.baseline_name})"


def _cells(row: Row) -> list[str]:
    ratio = row.ratio
    ok = {True: "yes", False: "NO", None: "-"}[row.ok]
    return [
        row.figure,
        row.unit,
        _number(row.value),
        _spread_text(row),
        _baseline_text(row),
        "-" if ratio is None else f"{ratio:.2f}x",
        "-" if row.target is None else row.target.text,
        ok,
    ]


HEADER = ["figure", "unit", "value", "spread: min..max (rsd)", "baseline", "ratio", "target", "ok?"]


def print_table(rows: Sequence[Row], out: TextIO = sys.stdout) -> None:
    """One aligned text table, then the rows' details beneath it."""
    table = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    numeric = {2, 5}  # right-aligned columns
    for n, line in enumerate(table):
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print(" | ".join(cells).rstrip(), file=out)
        if n == 0:
            print("-+-".join("-" * w for w in widths), file=out)
    detailed = [row for row in rows if row.detail]
    if detailed:
        print(file=out)
        for row in detailed:
            parts = ", ".join(f"{k} {_number(v)}" for k, v in row.detail.items())
            print(f"  {row.figure}: {parts}", file=out)


def environment() -> dict[str, Any]:
    """What every results file records about the machine running the load."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_results(
    suite: str,
    rows: Sequence[Row],
    meta: dict[str, Any],
    started_at: datetime,
    directory: Path = RESULTS_DIR,
) -> Path:
    """Write `<suite>-<UTC timestamp>.json` and `latest-<suite>.json`; returns the former."""
    document = {
        "suite": suite,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        **meta,
        "rows": [row.to_json() for row in rows],
    }
    encoded = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{suite}-{started_at:%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(encoded)
    (directory / f"latest-{suite}.json").write_bytes(encoded)
    return path
