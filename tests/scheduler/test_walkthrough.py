"""The README's "First use" and walkthrough, run as written (bash, curl, jq) against `python -m
controller serve` with its default scheduler: real jobs on this machine, from scaling to the
app's deletion."""

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.host.machine import reachable_dir, running
from tests.processes import ROOT
from tests.scheduler.served import KEY, Served

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")),
        reason="the walkthrough needs bash, curl and jq",
    ),
]


def readme_block(marker: str) -> str:
    """The shell block between the README's `<!-- marker -->` and `<!-- /marker -->`."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


def run_block(marker: str, service: Served, root: Path) -> subprocess.CompletedProcess[str]:
    """The block as a script of its own (`bash FILE`), in `root`, against `service`."""
    script = root / f"{marker}.sh"
    script.write_text(readme_block(marker))
    # The walkthrough's app goes under the service's artifact root, as in its default.
    app_dir = root / "data" / "artifacts" / "hello-app"
    env = os.environ | {"URL": service.url, "KEY": KEY, "APP_DIR": str(app_dir)}
    return subprocess.run(
        ["bash", str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=180
    )


def told(done: subprocess.CompletedProcess[str], service: Served) -> str:
    return f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nservice:\n{service.log()}"


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir("evenflow-walkthrough-") as path:
        yield path


@pytest.fixture
async def service(make_database: Callable[[], Awaitable[str]], root: Path) -> AsyncIterator[Served]:
    served = Served(await make_database(), root / "data", root / "service.log")
    yield served
    served.stop()


def test_the_readme_first_use_runs_as_written_and_stops_at_its_first_error(
    service: Served, root: Path
):
    """It succeeds and lists its app's events; run again, it stops at the taken name."""
    done = run_block("first-use", service, root)
    assert done.returncode == 0, told(done, service)
    kinds = {line.split()[1] for line in done.stdout.splitlines() if line[:1].isdigit()}
    assert kinds == {"app", "app_release"}, told(done, service)  # the release names no app
    again = run_block("first-use", service, root)
    assert again.returncode != 0 and "409" in again.stderr, told(again, service)
    assert again.stdout.count("\n") < done.stdout.count("\n"), told(again, service)


def test_the_readme_walkthrough_runs_as_written_after_the_first_use(service: Served, root: Path):
    """Every step of the walkthrough succeeds, and afterwards no job process is left."""
    first = run_block("first-use", service, root)
    assert first.returncode == 0, told(first, service)
    done = run_block("walkthrough", service, root)
    assert done.returncode == 0, told(done, service)
    out = done.stdout.splitlines()
    jobs = [line.split() for line in out if re.fullmatch(r"(web|worker) host-\S+ up", line)]
    assert sorted(kind for kind, _, _ in jobs) == ["web", "web", "worker"], told(done, service)
    assert any(line.startswith("hello from host-") for line in out), told(done, service)
    deployment = [line.split(" ", 1)[1].strip() for line in out if line.startswith("deployment")]
    assert deployment[0] == "pending" and deployment[-1] == "complete", told(done, service)
    assert "running web starting" in deployment and "running worker up" in deployment, told(
        done, service
    )
    assert out[-1] == "hello deleted; no job left", told(done, service)
    assert running(root / "data" / "host") == {}, told(done, service)
