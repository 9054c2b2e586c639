"""The metrics' families, as one process renders them and as the parent merges them."""

from prometheus_client.parser import text_string_to_metric_families

from eventstore.stats import AppendStats
from service.metrics.families import Reading, merged, render
from service.metrics.requests import RequestStats


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_route_method_and_status_with_durations():
    """A request lands in its (route, method, status) counter and in the duration bucket of
    its (route, method); a method no client should use is counted as "other"."""
    stats = RequestStats()
    stats.observe("/apps/{app}", "GET", 200, 0.0004)
    stats.observe("/apps/{app}", "GET", 404, 0.003)
    stats.observe("unmatched", "BREW", 405, 0.001)
    got = samples(render(Reading(worker="3", requests=stats, folded=7)).decode())
    route = (("method", "GET"), ("route", "/apps/{app}"))
    assert got[("evenflow_http_requests_total", (*route, ("status", "200"), ("worker", "3")))] == 1
    assert got[("evenflow_http_requests_total", (*route, ("status", "404"), ("worker", "3")))] == 1
    other = (("method", "other"), ("route", "unmatched"), ("status", "405"), ("worker", "3"))
    assert got[("evenflow_http_requests_total", other)] == 1
    duration = "evenflow_http_request_duration_seconds"
    assert got[(f"{duration}_count", (*route, ("worker", "3")))] == 2
    assert got[(f"{duration}_bucket", (("le", "0.0005"), *route, ("worker", "3")))] == 1
    assert got[(f"{duration}_bucket", (("le", "0.005"), *route, ("worker", "3")))] == 2
    assert got[("evenflow_fold_position", (("worker", "3"),))] == 7


def test_appends_and_the_fold_are_rendered_from_a_reading():
    """Appends, events, failures and commit times come from the writer's counts; the lags
    from the head, the fold and the SQL read model's positions."""
    appends = AppendStats()
    appends.committed(3, 0.002)
    appends.failed += 1
    reading = Reading(worker="0", requests=RequestStats(), folded=8, head=10,
                      appends=appends, sql_position=4, jobs={"up": 2},
                      deployments={"complete": 1}, scheduling=True, restarts=5,
                      pools={"main": (3, 1)})  # fmt: skip
    got = samples(render(reading).decode())
    w = (("worker", "0"),)
    assert got[("evenflow_append_batches_total", w)] == 1
    assert got[("evenflow_appended_events_total", w)] == 3
    assert got[("evenflow_append_failures_total", w)] == 1
    assert got[("evenflow_append_commit_seconds_bucket", (("le", "0.0025"), *w))] == 1
    assert got[("evenflow_fold_lag_events", w)] == 2
    assert got[("evenflow_sql_read_model_lag_events", w)] == 6
    assert got[("evenflow_jobs", (("state", "up"), *w))] == 2
    assert got[("evenflow_deployments", (("status", "complete"), *w))] == 1
    assert got[("evenflow_job_restarts_total", w)] == 5
    assert got[("evenflow_db_pool_in_use", (("pool", "main"), *w))] == 1


def test_the_workers_expositions_merge_into_one_family_each():
    """Merged, each family appears once, holding every worker's samples."""
    texts = [render(Reading(worker=str(i), requests=RequestStats(), folded=i)).decode()
             for i in range(2)]  # fmt: skip
    families = merged(texts)
    names = [f.name for f in families]
    assert len(names) == len(set(names))
    fold = next(f for f in families if f.name == "evenflow_fold_position")
    assert {(s.labels["worker"], s.value) for s in fold.samples} == {("0", 0), ("1", 1)}
