"""Flynn's restart backoff: how long a crashed formation job waits before it is replaced.

Flynn HEAD (controller/scheduler): a restart is a new job carrying `restarts` = n; it starts
at once while n < 5, after 10 s while n < 15, after 30 s beyond; a job that was up for 5
minutes resets the count.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Backoff:
    delays: tuple[float, float, float] = (0.0, 10.0, 30.0)
    thresholds: tuple[int, int] = (5, 15)
    reset_after: float = 300.0  # seconds up after which a crash counts as the first again

    def delay(self, restarts: int) -> float:
        """Seconds to wait before starting a job that replaces one with `restarts` restarts."""
        if restarts < self.thresholds[0]:
            return self.delays[0]
        if restarts < self.thresholds[1]:
            return self.delays[1]
        return self.delays[2]

    def replace(self, restarts: int, up_for: float | None) -> tuple[int, float]:
        """The replacement's restart count, and its delay, for a job that ended after being
        up for `up_for` seconds (None: it never came up)."""
        if up_for is not None and up_for >= self.reset_after:
            restarts = 0
        return restarts + 1, self.delay(restarts)
