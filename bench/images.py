"""The images suite: jobs of container images against jobs of processes, on one host.

The service runs with the local scheduler and JOB_HOST=podman on a throwaway PostgreSQL and
data directory. Two releases run the same web server (busybox httpd on $PORT): one from a
`file` artifact (a process), one from the test image (a container, `podman import`-ed from
Debian's static busybox, as the tests build it). Each run scales one of them from 0 to 1 and
times `PUT formation` to the job's `up` (its port answers), then back to 0; the two kinds
alternate. Then a formation of `sleep` containers is scaled to `jobs` at once: how long until
all are up, the memory each costs the machine, the service's CPU while they idle, and how
long scaling them back to 0 takes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from bench import process_tree_cpu, scratch_database, server
from bench.report import Row
from bench.service import AUTH, evenflow
from domain.states import ACTIVE_JOB_STATES
from tests.host.images import busybox_image, remove_containers

WEB = 'exec busybox httpd -f -p "$PORT" -h /tmp'


@attrs.frozen
class Plan:
    runs: int  # PUT formation -> up, per kind
    jobs: int  # containers at once
    idle_seconds: float


FULL = Plan(runs=7, jobs=100, idle_seconds=10.0)
QUICK = Plan(runs=2, jobs=20, idle_seconds=3.0)


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    plan = QUICK if quick else FULL
    image = busybox_image()
    data = Path(tempfile.mkdtemp(prefix="evenflow-bench-images-"))
    os.chmod(data, 0o711)
    host_id = f"bench{uuid.uuid4().hex[:8]}"
    env = {"SCHEDULER": "local", "JOB_HOST": "podman", "HOST_ID": host_id,
           "EVENFLOW_DATA_DIR": str(data), "JOB_STOP_GRACE": "1"}  # fmt: skip
    try:
        with server() as (admin_dsn, where, _pid):
            loop = asyncio.new_event_loop()
            manager = scratch_database(admin_dsn)
            dsn = loop.run_until_complete(manager.__aenter__())
            try:
                with evenflow(dsn, workers=1, env=env) as service:
                    found = loop.run_until_complete(
                        measure(service.url, service.proc.pid, image, data, plan)
                    )
            finally:
                loop.run_until_complete(manager.__aexit__(None, None, None))
                loop.close()
    finally:
        remove_containers(host_id)
        shutil.rmtree(data, ignore_errors=True)
    return rows(found, plan), {"database": where, "plan": attrs.asdict(plan)}


async def measure(url: str, pid: int, image: str, data: Path, plan: Plan) -> dict[str, Any]:
    async with aiohttp.ClientSession(
        base_url=url, headers={"Authorization": AUTH, "Content-Type": "application/json"}
    ) as http:
        app = (await post(http, "/apps", {"name": "bench-images"}))["id"]
        tree = data / "artifacts" / "web"
        tree.mkdir(parents=True)
        os.chmod(tree, 0o755)
        os.chmod(data / "artifacts", 0o755)
        process = await release(http, {"type": "file", "uri": tree.as_uri()})
        container = await release(http, {"type": "docker", "uri": f"containers-storage:{image}"})
        up: dict[str, list[float]] = {"process": [], "image": []}
        for n in range(plan.runs):
            for kind, release_id in (("process", process), ("image", container)):
                up[kind].append(await time_to_up(http, app, release_id))
            print(f"  run {n + 1}/{plan.runs}: process {up['process'][-1]:.2f} s, "
                  f"image {up['image'][-1]:.2f} s", file=sys.stderr, flush=True)  # fmt: skip
        many = await sustain(http, app, container, pid, plan)
    return {"up": up, **many}


async def post(http: aiohttp.ClientSession, path: str, body: Any, method: str = "POST") -> Any:
    async with http.request(method, path, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def release(http: aiohttp.ClientSession, artifact: dict[str, str]) -> str:
    made = await post(http, "/artifacts", artifact)
    processes = {
        "web": {"cmd": ["sh", "-c", WEB], "ports": [{"proto": "tcp"}]},
        "sleeper": {"cmd": ["sleep", "3600"]},
    }
    body = {"artifact": made["id"], "processes": processes}
    return str((await post(http, "/releases", body))["id"])


async def jobs(http: aiohttp.ClientSession, app: str) -> list[dict[str, Any]]:
    async with http.get(f"/apps/{app}/jobs") as response:
        return list(await response.json())


async def scale(http: aiohttp.ClientSession, app: str, release_id: str, **counts: int) -> None:
    await post(http, f"/apps/{app}/formations/{release_id}", {"processes": counts}, "PUT")


async def settle(http: aiohttp.ClientSession, app: str, timeout: float = 600) -> None:
    """Until no job of the app is live."""
    async with asyncio.timeout(timeout):
        while any(j["state"] in ACTIVE_JOB_STATES for j in await jobs(http, app)):
            await asyncio.sleep(0.05)


async def time_to_up(http: aiohttp.ClientSession, app: str, release_id: str) -> float:
    """Seconds from `PUT formation` (web: 1) to its new job's `up`."""
    seen = {j["id"] for j in await jobs(http, app)}
    began = time.perf_counter()
    await scale(http, app, release_id, web=1)
    async with asyncio.timeout(120):
        while not [j for j in await jobs(http, app) if j["id"] not in seen and j["state"] == "up"]:
            await asyncio.sleep(0.01)
    took = time.perf_counter() - began
    await scale(http, app, release_id, web=0)
    await settle(http, app)
    return took


async def sustain(
    http: aiohttp.ClientSession, app: str, release_id: str, pid: int, plan: Plan
) -> dict[str, float]:
    """`plan.jobs` sleeping containers at once: time to all up, memory, idle CPU, stop."""
    began = time.perf_counter()
    await scale(http, app, release_id, sleeper=plan.jobs)
    async with asyncio.timeout(900):
        while sum(j["state"] == "up" for j in await jobs(http, app)) < plan.jobs:
            await asyncio.sleep(0.2)
    all_up = time.perf_counter() - began
    cpu = process_tree_cpu(pid)
    await asyncio.sleep(plan.idle_seconds)
    idle = 100 * (process_tree_cpu(pid) - cpu) / plan.idle_seconds
    per_job = _containers_rss_mb() / plan.jobs
    print(f"  {plan.jobs} containers up in {all_up:.1f} s, {per_job:.1f} MB each, service "
          f"{idle:.1f} % CPU at rest", file=sys.stderr, flush=True)  # fmt: skip
    began = time.perf_counter()
    await scale(http, app, release_id, sleeper=0)
    await settle(http, app)
    return {"all up s": all_up, "MB per job": per_job, "idle CPU %": idle,
            "all down s": time.perf_counter() - began}  # fmt: skip


def _containers_rss_mb() -> float:
    """Resident memory of every container's processes and of their conmons, in MB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cgroup = (status.parent / "cgroup").read_text()
            cmdline = (status.parent / "cmdline").read_bytes()
            text = status.read_text()
        except OSError:
            continue
        if ("libpod-" in cgroup or cmdline.startswith(b"/usr/bin/conmon")) and "VmRSS:" in text:
            total += int(text.split("VmRSS:", 1)[1].split()[0])
    return total / 1024


def rows(found: dict[str, Any], plan: Plan) -> list[Row]:
    up = found["up"]
    process = statistics.median(up["process"])
    detail = {k: round(found[k], 2) for k in ("all up s", "MB per job", "idle CPU %", "all down s")}
    return [
        Row("PUT formation -> up, process job (web)", "s", tuple(up["process"])),
        Row("PUT formation -> up, image job (web)", "s", tuple(up["image"]),
            baseline_name="process job", baseline_value=process),
        Row(f"image jobs up at once on one host ({plan.jobs} sleep containers)", "s to all up",
            (found["all up s"],), detail=detail),
    ]  # fmt: skip
