"""`evenflow` (`python -m controller`): each way a command fails is one line on stderr and its
documented exit status (replay/exits.py), never a traceback; `--version` everywhere."""

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controller.__main__ import parser, url
from controller.failures import run
from replay.exits import DATABASE_UNREACHABLE, FAILED, INTERRUPTED, USAGE
from service.settings import EVENFLOW_VERSION
from tests.processes import ROOT, free_port

#: What the test's own environment must not decide for the command.
CLEARED = ("DATABASE_URL", "AUTH_KEY", "EVENFLOW_DATA_DIR", "LOCALPG_DIR", "PORT", "HOST")


def evenflow(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command run in `cwd`, as an operator would, with a clean environment."""
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base |= {"PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str], status: int) -> str:
    """The failure's one line (without `evenflow: `), after checking the exit status."""
    told = f"status {done.returncode}, stderr:\n{done.stderr}"
    assert done.returncode == status, told
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("evenflow: "), told
    return done.stderr.removeprefix("evenflow: ").strip()


def closed_database() -> str:
    """A DATABASE_URL where nothing listens."""
    return f"postgresql://evenflow:secret@127.0.0.1:{free_port()}/evenflow"


def test_a_backup_into_a_missing_folder_fails_in_one_line(tmp_path: Path):
    """Said before the log is read: the folder that is not there (status 1)."""
    done = evenflow("backup", "-o", "/missing/dir/x.tar", cwd=tmp_path)
    assert (
        one_line(done, FAILED)
        == "cannot write the backup to /missing/dir/x.tar: no folder /missing/dir"
    )
    assert not (tmp_path / ".localpg").exists(), "no database was started for it"


def test_restoring_a_missing_file_fails_in_one_line(tmp_path: Path):
    """The file named, and nothing started (status 1)."""
    done = evenflow("replay", "restore", "missing.tar", cwd=tmp_path)
    assert one_line(done, FAILED) == "missing.tar: No such file or directory"
    assert not (tmp_path / ".localpg").exists()


def test_verify_against_a_service_without_any_key_fails_in_one_line(tmp_path: Path):
    """No AUTH_KEY, no key file in the data directory, no --key: status 1, saying where a key
    is looked for."""
    done = evenflow("replay", "verify", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    line = one_line(done, FAILED)
    assert line.startswith("no API key for http://127.0.0.1:9: set AUTH_KEY"), line
    assert "auth_key" in line


@pytest.mark.parametrize(
    "args",
    [
        ["backup", "-o", "x.tar"],
        ["replay", "state"],
        ["replay", "history", "--app", "shop"],
        ["replay", "verify"],
        ["replay", "rebuild-sql"],
        ["replay", "restore", "present.tar"],
        ["serve", "--port", "0"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_an_unreachable_database_fails_in_one_line_with_status_3(tmp_path: Path, args: list[str]):
    """DATABASE_URL where nothing listens: status 3, and the URL's password is not shown."""
    (tmp_path / "present.tar").write_bytes(b"")
    done = evenflow(*args, cwd=tmp_path, env={"DATABASE_URL": closed_database()})
    line = one_line(done, DATABASE_UNREACHABLE)
    assert line.startswith("cannot reach the database of DATABASE_URL: "), line
    assert "secret" not in done.stderr


def test_a_database_url_that_is_not_one_fails_in_one_line(tmp_path: Path):
    """Status 1: a setting to correct, not a database to wait for."""
    done = evenflow("replay", "state", cwd=tmp_path, env={"DATABASE_URL": "mysql://db/x"})
    assert one_line(done, FAILED).startswith("DATABASE_URL is not a PostgreSQL URL")


def test_a_bad_setting_fails_in_one_line(tmp_path: Path):
    """A refused environment variable is named (status 1)."""
    done = evenflow("serve", cwd=tmp_path, env={"SCHEDULER": "sometimes"})
    assert one_line(done, FAILED) == "SCHEDULER must be one of local, off, got 'sometimes'"
    done = evenflow("replay", "state", cwd=tmp_path, env={"LOG_LEVEL": "loud"})
    assert one_line(done, FAILED) == "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got 'loud'"


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "state", "--at", "-1"],
        ["replay", "state", "--at", "1", "--at-time", "2026-01-01T00:00:00Z"],
        ["replay", "nothing"],
        ["backup"],
        ["serve", "--port", "http"],
        [],
    ],
)
def test_a_bad_command_line_is_one_line_with_status_2(argv: list[str], capsys):
    """argparse's usage errors, each as one line that points at --help."""
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evenflow: ") and "--help)" in err, err


def test_serve_refuses_no_workers_as_a_bad_command_line(tmp_path: Path):
    """`--workers 0`: status 2, before anything starts."""
    done = evenflow("serve", "--workers", "0", cwd=tmp_path)
    assert one_line(done, USAGE) == "--workers must be at least 1"
    assert not (tmp_path / ".evenflow").exists()


def test_an_interrupted_command_exits_130_in_one_line(capsys):
    """Ctrl-C during a command: `interrupted`, status 130, no traceback."""

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run(interrupted) == INTERRUPTED
    assert capsys.readouterr().err == "evenflow: interrupted\n"


def test_an_unexpected_error_is_one_line_naming_it(capsys):
    """A bug still ends in one line (status 1); its traceback is for LOG_LEVEL=DEBUG."""

    def broken() -> int:
        raise ZeroDivisionError("division by zero")

    assert run(broken) == FAILED
    err = capsys.readouterr().err
    assert err.startswith("evenflow: unexpected error: ZeroDivisionError: division by zero")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["serve"],
        ["backup"],
        ["replay"],
        ["replay", "restore"],
        ["replay", "verify"],
        ["replay", "state"],
        ["replay", "history"],
        ["replay", "rebuild-sql"],
    ],
    ids=lambda argv: " ".join(argv) or "evenflow",
)
def test_every_command_has_version(argv: list[str], capsys):
    """`--version` prints the version and exits 0, whatever else the command requires."""
    with pytest.raises(SystemExit) as exited:
        parser().parse_args([*argv, "--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"evenflow {EVENFLOW_VERSION}\n"


def test_the_installed_command_has_version(tmp_path: Path):
    """The `evenflow` script of the environment (make install) runs from anywhere."""
    script = Path(sys.executable).parent / "evenflow"
    if not script.exists():
        pytest.skip("evenflow is not installed in this environment (make install)")
    done = subprocess.run(
        [str(script), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, f"evenflow {EVENFLOW_VERSION}\n"), done.stderr


@pytest.mark.parametrize(
    ("host", "shown"),
    [("0.0.0.0", "localhost"), ("::", "localhost"), ("::1", "[::1]"), ("10.1.2.3", "10.1.2.3")],
)
def test_the_address_given_is_one_a_client_can_use(host: str, shown: str):
    """All of the machine's addresses are given as localhost; an IPv6 one in brackets."""
    assert url(host, 8080, tls=False) == f"http://{shown}:8080"
    assert url(host, 443, tls=True) == f"https://{shown}:443"


# -- serve, on the embedded PostgreSQL --------------------------------------------------


def serving_env(root: Path) -> dict[str, str]:
    """A service of its own under `root`: its embedded PostgreSQL, its data, its port."""
    return {
        "LOCALPG_DIR": str(root / "pg"),
        "EVENFLOW_DATA_DIR": str(root / "data"),
        "SCHEDULER": "off",
        "PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def serving(root: Path, env: dict[str, str]) -> Iterator[Path]:
    """`evenflow serve` in `root` until it has said where it serves; yields its stderr's file."""
    output = root / f"serve-{time.monotonic_ns()}.log"
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "serve", "--workers", "1"],
            cwd=root,
            env=base | {"PYTHONPATH": str(ROOT)} | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while " evenflow: serving http" not in output.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.05)
        yield output
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.postgres
def test_a_start_says_where_the_service_is_and_the_key_only_when_generated(tmp_path: Path):
    """The first start prints the new key once; every start gives the URL (localhost for all
    addresses) and the key's file, with little else."""
    env = serving_env(tmp_path)
    key_file = tmp_path / "data" / "auth_key"
    banner = f" INFO evenflow: serving http://localhost:{env['PORT']}, API key in {key_file}"
    with serving(tmp_path, env) as output:
        key = key_file.read_text().strip()
        token = base64.b64encode(f":{key}".encode()).decode()
        status_url = f"http://127.0.0.1:{env['PORT']}/.well-known/status"
        request = urllib.request.Request(status_url, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    first = output.read_text().splitlines()
    new_key = (
        f"evenflow: a new API key, kept in {key_file}: {key}  (set AUTH_KEY to choose your own)"
    )
    said = [i for i, line in enumerate(first) if line.endswith(banner)]
    assert first.count(new_key) == 1 and len(said) == 1, first
    start = first[: said[0]]
    assert len([line for line in start if line != new_key]) <= 2, first  # the fold, at most
    assert not [line for line in first if " WARNING " in line or " ERROR " in line], first
    with serving(tmp_path, env) as output:
        pass
    again = output.read_text()
    assert banner in again and key not in again, again


@pytest.mark.postgres
def test_a_second_service_on_the_same_data_fails_in_one_line(tmp_path: Path):
    """`make run` twice in one checkout: the second says so and exits 1; the first serves on."""
    env = serving_env(tmp_path)
    with serving(tmp_path, env):
        done = evenflow(
            "serve", "--workers", "1", cwd=tmp_path, env=env | {"PORT": str(free_port())}
        )
        line = one_line(done, FAILED)
        assert line.startswith(
            f"the embedded PostgreSQL in {tmp_path / 'pg'} is running for another service"
        ), line
        with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/ping", timeout=10) as answer:
            assert answer.status == 200
