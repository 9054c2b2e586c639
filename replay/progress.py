"""A progress line on stderr for long runs (only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Seconds between redraws; nothing is drawn for runs shorter than the first.
REDRAW = 0.5


class Progress:
    """`  label  523,000 / 1,000,000 events  52%  312,000 events/s`, redrawn in place."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        out: TextIO | None = None,
        *,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.out = out or sys.stderr
        self.enabled = self.out.isatty() if enabled is None else enabled
        self.count = 0
        self.started = time.perf_counter()
        self._drawn = self.started
        self._shown = False

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and (now := time.perf_counter()) - self._drawn >= REDRAW:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._shown = True
        rate = self.count / max(now - self.started, 1e-9)
        of = f" / {self.total:,}" if self.total else ""
        percent = f" {100 * self.count // self.total:3d}%" if self.total else ""
        line = f"\r  {self.label}  {self.count:,}{of} events{percent}  {rate:,.0f} events/s "
        self.out.write(line)
        self.out.flush()

    @property
    def rate(self) -> float:
        return self.count / max(time.perf_counter() - self.started, 1e-9)

    def done(self) -> None:
        """Draw the final figures and end the line."""
        if self._shown:
            self._draw(time.perf_counter())
            self.out.write("\n")
            self.out.flush()
