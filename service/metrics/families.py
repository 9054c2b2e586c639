"""What one process says when scraped: a `Reading` taken at scrape time, turned into
Prometheus' metric families, every sample labelled with the process's worker."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate

import attrs
from prometheus_client import ProcessCollector, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families

from eventstore.stats import BATCH_BUCKETS, COMMIT_BUCKETS, AppendStats
from service.metrics.requests import BUCKETS, RequestStats

PREFIX = "evenflow_"


@attrs.frozen
class Reading:
    """One process's figures, as read when scraped (None: not known to this process)."""

    worker: str
    requests: RequestStats
    folded: int  # the last event the process's read model folded
    head: int | None = None  # the log's newest event (None: the database did not answer)
    fold_lag_seconds: float = 0.0  # since the oldest event not folded yet was committed
    appends: AppendStats | None = None
    subscribers: int = 0
    subscriber_lag: int = 0
    streams: int = 0
    sql_position: int | None = None
    jobs: Mapping[str, int] = attrs.field(factory=dict)
    deployments: Mapping[str, int] = attrs.field(factory=dict)
    scheduling: bool | None = None  # None: no scheduler in this process; else leading?
    restarts: int = 0
    pools: Mapping[str, tuple[int, int]] = attrs.field(factory=dict)  # name -> (open, in use)


def _buckets(bounds: Sequence[float], counts: Sequence[float]) -> list[tuple[str, float]]:
    cumulative = list(accumulate(counts))
    return [(repr(float(b)), c) for b, c in zip(bounds, cumulative, strict=False)] + [
        ("+Inf", cumulative[-1])
    ]


def _http(stats: RequestStats) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        PREFIX + "http_requests", "HTTP requests answered", labels=("route", "method", "status")
    )
    durations = HistogramMetricFamily(
        PREFIX + "http_request_duration_seconds",
        "Time from a request's routing to its answer's last byte",
        labels=("route", "method"),
    )
    by_route: dict[tuple[str, str], list[float]] = {}
    for (route, method, status), entry in list(stats.entries.items()):
        requests.add_metric((route, method, str(status)), entry[0])
        total = by_route.setdefault((route, method), [0.0] * len(entry))
        for i, value in enumerate(entry):
            total[i] += value
    for labels, entry in by_route.items():
        durations.add_metric(labels, _buckets(BUCKETS, entry[2:]), entry[1])
    yield requests
    yield durations


def _appends(stats: AppendStats) -> Iterator[Metric]:
    yield CounterMetricFamily(
        PREFIX + "append_batches", "Appends committed (one transaction each)", value=stats.batches
    )
    yield CounterMetricFamily(PREFIX + "appended_events", "Events appended", value=stats.events)
    yield CounterMetricFamily(
        PREFIX + "append_failures",
        "Appends refused or failed (not the retried ConcurrencyError)",
        value=stats.failed,
    )
    commits = HistogramMetricFamily(
        PREFIX + "append_commit_seconds", "Time to write and commit an append (durable)"
    )
    commits.add_metric((), _buckets(COMMIT_BUCKETS, stats.commit_buckets), stats.commit_seconds)
    yield commits
    sizes = HistogramMetricFamily(PREFIX + "append_batch_events", "Events per committed append")
    sizes.add_metric((), _buckets(BATCH_BUCKETS, stats.batch_buckets), stats.events)
    yield sizes


def _by(name: str, doc: str, label: str, counts: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=(label,))
    for value, count in sorted(counts.items()):
        family.add_metric((value,), count)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def families(reading: Reading) -> Iterator[Metric]:
    """The process's metric families, without the worker label."""
    yield from _http(reading.requests)
    if reading.appends is not None:
        yield from _appends(reading.appends)
    if reading.head is not None:
        yield _gauge("log_head", "The newest event of the log", reading.head)
        lag = max(reading.head - reading.folded, 0)
        yield _gauge("fold_lag_events", "Events of the log this process has not folded", lag)
    yield _gauge("fold_position", "The last event this process's read model folded", reading.folded)
    yield _gauge(
        "fold_lag_seconds",
        "Age of the oldest event this process has not folded (0: none)",
        reading.fold_lag_seconds,
    )
    yield _gauge("stream_subscribers", "Clients of GET /events streams", reading.subscribers)
    yield _gauge(
        "stream_subscriber_lag_events",
        "Events the furthest-behind event-stream client has yet to get",
        reading.subscriber_lag,
    )
    yield _gauge("streams_open", "Streams open (events, formations, app logs)", reading.streams)
    if reading.sql_position is not None:
        yield _gauge(
            "sql_read_model_position", "The SQL read model's position", reading.sql_position
        )
        if reading.head is not None:
            lag = max(reading.head - reading.sql_position, 0)
            yield _gauge("sql_read_model_lag_events", "Events the SQL read model lacks", lag)
    yield _by("jobs", "Jobs of the folded log by state", "state", reading.jobs)
    yield _by(
        "deployments", "Deployments of the folded log by status", "status", reading.deployments
    )
    if reading.scheduling is not None:
        yield _gauge("scheduler_leading", "1 if this process schedules", int(reading.scheduling))
        yield CounterMetricFamily(
            PREFIX + "job_restarts",
            "Jobs replaced after ending on their own, since this process began scheduling",
            value=reading.restarts,
        )
    if reading.pools:
        size = GaugeMetricFamily(
            PREFIX + "db_pool_connections", "Connections open", labels=("pool",)
        )
        used = GaugeMetricFamily(PREFIX + "db_pool_in_use", "Connections in use", labels=("pool",))
        for name, (opened, in_use) in sorted(reading.pools.items()):
            size.add_metric((name,), opened)
            used.add_metric((name,), in_use)
        yield size
        yield used


def labelled(metrics: Iterable[Metric], worker: str) -> Iterator[Metric]:
    """The families with `worker` added to every sample's labels."""
    for metric in metrics:
        metric.samples = [s._replace(labels={**s.labels, "worker": worker}) for s in metric.samples]
        yield metric


class _Families:
    """What generate_latest renders: anything with collect()."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> list[Metric]:
        return self._metrics


#: The process's CPU, memory and file descriptors (Prometheus' standard process_* metrics).
_PROCESS = ProcessCollector(registry=None)


def render(reading: Reading) -> bytes:
    """The process's exposition in Prometheus' text format."""
    metrics = [*families(reading), *_PROCESS.collect()]
    return generate_latest(_Families(labelled(metrics, reading.worker)))


def merged(expositions: Iterable[str]) -> list[Metric]:
    """Several processes' expositions as one list of families (a family's samples together,
    as the format requires); their samples are told apart by their worker label."""
    found: dict[str, Metric] = {}
    for text in expositions:
        for metric in text_string_to_metric_families(text):
            known = found.setdefault(metric.name, metric)
            if known is not metric:
                known.samples.extend(metric.samples)
    return list(found.values())
