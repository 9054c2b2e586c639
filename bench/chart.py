"""A PNG of every figure with a target: how far each is from its pass mark, at a glance.

Each bar is the figure's standing against its target, oriented so that 1.0 is the mark and
more is better: ratio / threshold for ">= n x baseline", value / threshold for ">= n", and
threshold / value for "<= n" (a latency or a size). Green bars meet their target, red ones
miss it; the whiskers span the slowest and fastest runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from bench.report import RESULTS_DIR, Row

#: Bars are drawn up to this standing (a figure far past its mark would squash the others);
#: the label gives the real value.
CAP = 3.0


def standing(row: Row, value: float) -> float:
    """`value` (a run of `row`, or its median) against the row's target: 1.0 is the mark."""
    target = row.target
    assert target is not None
    measured = value
    if target.on == "ratio":
        if not row.baseline_value:
            return float("nan")
        measured = value / row.baseline_value
    if target.op == ">=":
        return measured / target.threshold
    return target.threshold / measured if measured else float("inf")


def write_chart(
    rows: Sequence[Row], started_at: datetime, directory: Path = RESULTS_DIR
) -> Path | None:
    """`chart-<UTC timestamp>.png` and `latest-chart.png`; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    judged = [row for row in rows if row.target is not None and row.ok is not None]
    if not judged:
        return None
    names = [f"{row.figure}  ({row.target.text})" for row in judged if row.target]
    values = [standing(row, row.value) for row in judged]
    runs = [[standing(row, run) for run in row.runs] for row in judged]
    shown = [min(v, CAP) for v in values]
    low = [max(0.0, s - min(min(r), CAP)) for s, r in zip(shown, runs, strict=True)]
    high = [max(0.0, min(max(r), CAP) - s) for s, r in zip(shown, runs, strict=True)]
    colors = ["#3a7d44" if row.ok else "#c0392b" for row in judged]
    height = 0.45 * len(judged) + 1.5
    fig, ax = plt.subplots(figsize=(11, height))
    positions = range(len(judged))
    ax.barh(positions, shown, xerr=[low, high], color=colors, capsize=3)
    ax.set_xlim(0, CAP * 1.12)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(positions), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("standing against the target (1.0 = the mark; right is better)")
    ax.set_title(f"Evenflow benchmarks, {started_at:%Y-%m-%d %H:%M} UTC (median of runs)")
    for y, value, bar in zip(positions, values, shown, strict=True):
        ax.text(bar, y, f" {value:.2f}" + (" >" if value > CAP else ""), va="center", fontsize=8)
    fig.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"chart-{started_at:%Y%m%dT%H%M%SZ}.png"
    fig.savefig(path, dpi=110)
    fig.savefig(directory / "latest-chart.png", dpi=110)
    plt.close(fig)
    return path
