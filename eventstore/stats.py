"""What the log's writer has done, counted as it goes: read by the service's metrics.

Plain integers and two bucket lists, bumped once per append (one transaction; the
dispatcher batches commands into it): the metrics are computed from them only when scraped
(service/metrics/)."""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds, in seconds, of the commit-latency buckets (a durable commit is an fsync).
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
#: Upper bounds of the batch-size buckets, in events.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 5000)


class AppendStats:
    """Appends committed (their sizes and commit times) and appends failed."""

    __slots__ = ("batch_buckets", "batches", "commit_buckets", "commit_seconds", "events", "failed")

    def __init__(self) -> None:
        self.batches = 0
        self.events = 0
        self.failed = 0  # appends answered with an error (a ConcurrencyError is an answer)
        self.commit_seconds = 0.0
        self.commit_buckets = [0] * (len(COMMIT_BUCKETS) + 1)  # the last one: +Inf
        self.batch_buckets = [0] * (len(BATCH_BUCKETS) + 1)

    def committed(self, events: int, seconds: float) -> None:
        """An append wrote `events` in `seconds`."""
        self.batches += 1
        self.events += events
        self.commit_seconds += seconds
        self.commit_buckets[bisect_left(COMMIT_BUCKETS, seconds)] += 1
        self.batch_buckets[bisect_left(BATCH_BUCKETS, events)] += 1
