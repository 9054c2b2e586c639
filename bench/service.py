"""The service under test and its load generator, each a process of its own.

`evenflow()` runs `python -m controller serve` (SCHEDULER=off) on a free port, `ceiling()`
the minimal aiohttp app of bench/ceiling.py, and `wrk()` one run of wrk against either,
with the CPU the target's processes used during the run: CPU per request depends far less
on what else the machine is doing than requests per second do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs
import orjson

from bench import process_tree_cpu

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).parent / "lua"
KEY = "bench-key"
AUTH = aiohttp.encode_basic_auth("", KEY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_cpu() -> float:
    """CPU seconds all cores have been busy since boot (/proc/stat: all but idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` and its children, in MB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            text = status.read_text()
            ppid = int(text.split("PPid:", 1)[1].split()[0])
            if pid in (int(status.parent.name), ppid) and "VmRSS:" in text:
                total += int(text.split("VmRSS:", 1)[1].split()[0])
    return total / 1024


def wait_ready(url: str, proc: subprocess.Popen[bytes], path: str = "/.well-known/status",
               timeout: float = 300) -> float:  # fmt: skip
    """Poll until `url + path` answers 200; returns the seconds it took."""
    started = time.monotonic()

    async def poll() -> None:
        async with aiohttp.ClientSession(headers={"Authorization": AUTH}) as session:
            while time.monotonic() - started < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{url} exited with status {proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url + path) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.01)
            raise RuntimeError(f"{url} did not become ready in {timeout} s")

    asyncio.run(poll())
    return time.monotonic() - started


@attrs.define
class Target:
    """A server under load: where it listens and which process (tree) serves."""

    url: str
    proc: subprocess.Popen[bytes]
    ready_seconds: float = 0.0


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, root: Path = ROOT, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`args` run in the checkout `root` (whose packages `python -m` then imports); its
    stderr into the file `log` if given."""
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("ab")) if log is not None else None
        proc = subprocess.Popen(args, cwd=root, env=os.environ | (env or {}), stderr=stderr)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def evenflow(
    dsn: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    root: Path = ROOT,
    log: Path | None = None,
) -> Iterator[Target]:
    """The service of the checkout `root` on `dsn`, on a free port, until the block ends:
    quiet (LOG_LEVEL=WARNING) unless `env` says otherwise; its log into the file `log`."""
    port = free_port()
    args = [sys.executable, "-m", "controller", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]  # fmt: skip
    settings = {"DATABASE_URL": dsn, "AUTH_KEY": KEY, "LOG_LEVEL": "WARNING", "SCHEDULER": "off",
                "METRICS_PORT": "0"}  # fmt: skip
    with process(args, settings | (env or {}), root, log) as proc:
        url = f"http://127.0.0.1:{port}"
        yield Target(url, proc, wait_ready(url, proc))


@contextlib.contextmanager
def ceiling() -> Iterator[Target]:
    port = free_port()
    with process([sys.executable, "-m", "bench.ceiling", "--port", str(port)]) as proc:
        url = f"http://127.0.0.1:{port}"
        yield Target(url, proc, wait_ready(url, proc, "/apps"))


def need_wrk() -> str:
    """wrk's path; installs Debian's package when missing and root, else says what to do."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk)", file=sys.stderr, flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)  # type: ignore[call-overload]
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update"], check=False, **quiet)  # type: ignore[call-overload]
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)  # type: ignore[call-overload]
        found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "the HTTP suite needs wrk (the load generator): `apt-get install wrk` as root, "
            "or `python -m bench --only store --only sse --only replay` without it"
        )
    return found


def wrk(
    target: Target,
    path: str,
    *,
    connections: int,
    seconds: float,
    script: str = "request.lua",
    env: dict[str, str] | None = None,
    threads: int = 2,
) -> dict[str, float]:
    """One wrk run: req/s, latency percentiles (ms), and the target's CPU per request (µs)."""
    settings = {"BENCH_AUTH": AUTH, "BENCH_ACCEPT": "application/json"} | (env or {})
    threads = min(threads, connections)
    cpu0, busy0, began = process_tree_cpu(target.proc.pid), machine_cpu(), time.monotonic()
    wrk0 = _children_cpu()
    result = subprocess.run(
        [need_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
         "--latency", "-s", str(LUA / script), target.url + path],
        env=os.environ | settings, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - began
    cpu, busy = process_tree_cpu(target.proc.pid) - cpu0, machine_cpu() - busy0
    load = _children_cpu() - wrk0
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout} {result.stderr}")
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    errors = summary["errors"] + summary["status_errors"]
    if errors:
        raise RuntimeError(f"{errors} failed requests on {target.url}{path}: {result.stdout}")
    requests = summary["requests"]
    return {
        "rps": requests / (summary["duration_us"] / 1e6),
        "p50 ms": summary["p50_us"] / 1000,
        "p99 ms": summary["p99_us"] / 1000,
        "server CPU us/req": 1e6 * cpu / max(requests, 1),
        "server CPU %": 100 * cpu / elapsed,
        "wrk CPU %": 100 * load / elapsed,
        # Busy CPU of the machine beyond the server's and wrk's (PostgreSQL's included).
        "others CPU %": 100 * (busy - cpu - load) / elapsed,
    }


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
