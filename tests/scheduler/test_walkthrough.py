"""The README's walkthrough, run as written (bash, curl, jq) against `python -m controller serve`
with its default scheduler: real jobs on this machine, from scaling to the app's deletion."""

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


def walkthrough() -> str:
    """The shell block between the README's walkthrough markers."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("<!-- /walkthrough -->", 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


@pytest.fixture
def root() -> Iterator[Path]:
    with reachable_dir("evenflow-walkthrough-") as path:
        yield path


@pytest.fixture
async def service(make_database: Callable[[], Awaitable[str]], root: Path) -> AsyncIterator[Served]:
    served = Served(await make_database(), root / "data", root / "service.log")
    yield served
    served.stop()


def test_the_readme_walkthrough_runs_as_written(service: Served, root: Path):
    """Every step of the walkthrough succeeds, and afterwards no job process is left."""
    script = root / "walkthrough.sh"
    script.write_text("set -eu\n" + walkthrough())
    # The app goes under the service's artifact root, as in the walkthrough's default.
    app_dir = root / "data" / "artifacts" / "hello-app"
    env = os.environ | {"URL": service.url, "KEY": KEY, "APP_DIR": str(app_dir)}
    done = subprocess.run(
        ["bash", str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=180
    )
    told = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nservice:\n{service.log()}"
    assert done.returncode == 0, told
    out = done.stdout.splitlines()
    jobs = [line.split() for line in out if re.fullmatch(r"(web|worker) host-\S+ up", line)]
    assert sorted(kind for kind, _, _ in jobs) == ["web", "web", "worker"], told  # step 3
    assert any(line.startswith("hello from host-") for line in out), told  # step 4: web
    deployment = [line.split(" ", 1)[1].strip() for line in out if line.startswith("deployment")]
    assert deployment[0] == "pending" and deployment[-1] == "complete", told  # step 5
    assert "running web starting" in deployment and "running worker up" in deployment, told
    assert out[-1] == "hello deleted; no job left", told
    assert running(root / "data" / "host") == {}, told
