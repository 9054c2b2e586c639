"""HTTP requests counted as they end: by route template, method and status, with their
durations in histogram buckets. One dict look-up and a few increments per request."""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds, in seconds, of the request-duration buckets.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted by name; any other is "other" (a client picks the method: the labels
#: must stay few whatever it sends).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route of a request no route answers (never its path: the labels must stay few).
UNMATCHED = "unmatched"

#: (route, method, status) -> [count, seconds, bucket counts..., +Inf bucket count]
Entries = dict[tuple[str, str, int], list[float]]


class RequestStats:
    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: Entries = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "other"
        key = (route, method, status)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = [0.0] * (len(BUCKETS) + 3)
        entry[0] += 1
        entry[1] += seconds
        entry[2 + bisect_left(BUCKETS, seconds)] += 1
