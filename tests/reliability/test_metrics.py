"""`serve --workers 2` with metrics and JSON logs: one scrape sees both workers, with the
names, labels and values a scripted workload leaves; every log line is a JSON object, and
the access lines carry the request ids sent."""

import asyncio
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port
from tests.reliability.service import AUTH, JSON, Service

pytestmark = pytest.mark.postgres

Samples = list[tuple[str, dict[str, str], float]]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text)
            for s in f.samples]  # fmt: skip


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over workers of the samples of `name` with these labels."""
    return sum(v for n, got, v in samples if n == name and labels.items() <= got.items())


async def scripted(session: aiohttp.ClientSession, url: str) -> None:
    """5 apps made, 4 reads of one, a path no route answers."""
    for n in range(5):
        headers = AUTH | JSON | {"X-Request-Id": f"script-{n}"}
        body = orjson.dumps({"name": f"metered-{n}"})
        async with session.post(f"{url}/apps", data=body, headers=headers) as r:
            assert r.status == 200
    for _ in range(4):
        async with session.get(f"{url}/apps/metered-0", headers=AUTH) as r:
            assert r.status == 200
    async with session.get(f"{url}/no/such/path", headers=AUTH) as r:
        assert r.status == 404


async def test_one_scrape_sees_both_workers_after_a_scripted_workload(
    database_url: str, tmp_path: Path
):
    """Requests by route template (never the raw path), method and status; the appends; the
    log's head and each worker's fold; the SQL read model's position from the first
    worker; every sample labelled with its worker."""
    port = free_port()
    env = {"METRICS_PORT": str(port), "LOG_FORMAT": "json"}
    service = Service(database_url, tmp_path, env, workers=2)
    try:
        async with aiohttp.ClientSession() as session:
            await service.ready(session)
            await scripted(session, service.url)
        deadline = time.monotonic() + 20
        while True:
            samples = scrape(port)
            folded = {got["worker"]: v for n, got, v in samples if n == "evenflow_fold_position"}
            sql = total(samples, "evenflow_sql_read_model_position")
            if (folded == {"0": 5, "1": 5} and sql == 5) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert folded == {"0": 5, "1": 5}, samples
        requests = "evenflow_http_requests_total"
        assert total(samples, requests, route="/apps", method="POST", status="200") == 5
        assert total(samples, requests, route="/apps/{app}", method="GET", status="200") == 4
        assert total(samples, requests, route="unmatched", method="GET", status="404") == 1
        assert not [got for _, got, _ in samples if "/no/such/path" in got.values()]
        duration = "evenflow_http_request_duration_seconds_count"
        assert total(samples, duration, route="/apps", method="POST") == 5
        assert total(samples, "evenflow_appended_events_total") == 5
        assert total(samples, "evenflow_append_batches_total") >= 1
        assert total(samples, "evenflow_append_failures_total") == 0
        heads = [v for n, _, v in samples if n == "evenflow_log_head"]
        assert heads == [5, 5]
        sql_workers = {got["worker"] for n, got, _ in samples
                       if n == "evenflow_sql_read_model_position"}  # fmt: skip
        assert sql == 5 and sql_workers == {"0"}
        assert {got.get("worker") for _, got, _ in samples} == {"0", "1"}
        assert total(samples, "evenflow_db_pool_connections", pool="main") >= 2
    finally:
        service.stop()
    lines = [orjson.loads(line) for line in service.log().splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    posts = [line for line in lines if line.get("route") == "/apps" and line["method"] == "POST"]
    assert sorted(line["request_id"] for line in posts) == [f"script-{n}" for n in range(5)]
    assert all(line["status"] == 200 and line["duration_us"] > 0 for line in posts)
    assert any(line["message"].startswith("read model at event") for line in lines)
