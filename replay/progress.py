"""Progress of a long command on stderr, stage by stage: tqdm's bar with the count, the rate
and the time left. Drawn only when stderr is a terminal: nothing reaches a pipe or a file."""

from __future__ import annotations

import sys
import time
from typing import Never, TextIO

from tqdm import tqdm

#: Counts gathered before the bar is told: a call per event would cost more than the work.
EVERY = 1_000
#: Seconds between redraws.
REDRAW = 0.5


def is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except ValueError:  # closed
        return False


class Progress:
    """The stages of one long operation (`stage`), each counted with `add` or `reach`.

    `Progress(label, total)` begins with a first stage; `stage()` ends the current one and
    begins the next. A stage's bar goes away when the stage ends: the command's own output
    stays alone on the screen.
    """

    def __init__(
        self,
        label: str = "",
        total: int | None = None,
        out: TextIO | None = None,
        *,
        enabled: bool | None = None,
    ) -> None:
        self.out = out or sys.stderr
        self.enabled = is_terminal(self.out) if enabled is None else enabled
        self._bar: tqdm[Never] | None = None
        self._begin(label, total, "events", EVERY)

    def _begin(self, label: str, total: int | None, unit: str | None, every: int) -> None:
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.count = 0  # in this stage
        self._told = 0  # of `count`, what the bar knows
        self._ended = False
        self.started = time.perf_counter()

    def stage(
        self, label: str, total: int | None = None, unit: str | None = "events", every: int = EVERY
    ) -> Progress:
        """End the current stage and begin `label`, of `total` `unit`s (None: unknown), shown
        at once. `unit` None: a step that counts nothing (its time is shown)."""
        self.done()
        self._begin(label, total, unit, every)
        if self.enabled:
            self._open()
        return self

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and self.count - self._told >= self.every:
            self._tell()

    def reach(self, position: int) -> None:
        """Counted in positions (event ids) rather than items: the stage is at `position`,
        of `total`; ids have holes, so this is what shows how much of the log is behind."""
        if position > self.count:
            self.add(position - self.count)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done()  # also on a failure: its line then stands alone

    def done(self) -> None:
        """End the current stage (once): its bar, if drawn, is cleared."""
        if not self.enabled or self._ended:
            return
        self._ended = True
        if self._bar is None and self.count:
            self._open()
        if self._bar is not None:
            self._tell()
            self._bar.refresh()  # the stage's final count, rate and time, however short
            self._bar.close()
            self._bar = None

    def _open(self) -> tqdm[Never]:
        counted = self.unit is not None
        bar: tqdm[Never] = tqdm(
            desc=self.label,
            total=self.total if counted else None,
            unit=f" {self.unit}" if counted else "",
            unit_scale=True,
            file=self.out,
            leave=False,
            mininterval=REDRAW,
            dynamic_ncols=True,
            bar_format=None if counted else "{desc} [{elapsed}]",
        )
        self._bar = bar
        return bar

    def _tell(self) -> None:
        bar = self._bar if self._bar is not None else self._open()  # a bar of 0 is falsy
        bar.update(self.count - self._told)
        self._told = self.count
