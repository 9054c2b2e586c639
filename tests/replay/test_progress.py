"""Progress of the long commands: a bar with the count, the rate and the time left on a
terminal (a pseudo-terminal here), for every stage; nothing at all on a pipe."""

import asyncio
import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from replay.progress import Progress
from replay.restore import restore
from tests.processes import ROOT

#: Each long command, and the stages it must show.
COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "backup": (["backup", "-o", "{tmp}/again.tar"], ["backing up"]),
    "restore": (
        ["replay", "restore", "--force", "{backup}"],
        ["checking the backup", "loading", "checking the database", "rebuilding the SQL"],
    ),
    "verify": (["replay", "verify"], ["reading the read model", "folding the log"]),
    "rebuild-sql": (["replay", "rebuild-sql"], ["rebuilding the SQL read model"]),
    "state": (["replay", "state", "--app", "shop"], ["folding the log"]),
    "history": (["replay", "history", "--app", "shop"], ["finding the app", "reading its events"]),
}


def on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run with stderr on a pseudo-terminal of 100 columns: (exit status, what it showed)."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=terminal,
        )  # fmt: skip
    finally:
        os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the command has closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return proc.wait(60), shown


def on_pipe(argv: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=60)
    return done.returncode, done.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("command", list(COMMANDS))
async def test_long_commands_show_progress_on_a_terminal_and_nothing_on_a_pipe(
    command: str, client: TestClient, history: dict[str, Any], make_database: Any, tmp_path: Path
):
    """Every stage is shown with its count, its rate and its time left; a pipe gets none."""
    backup = tmp_path / "b.tar"
    backup.write_bytes(await (await client.get("/backup")).read())
    dsn = await make_database()
    await restore(dsn, backup)
    args, stages = COMMANDS[command]
    argv = [sys.executable, "-m", "controller"]
    argv += [a.format(tmp=tmp_path, backup=backup) for a in args]
    env = {**os.environ, "DATABASE_URL": dsn, "LOG_LEVEL": "WARNING"}
    code, shown = await asyncio.to_thread(on_terminal, argv, env)
    text = shown.decode(errors="replace")
    assert code == 0, text
    for stage in stages:
        assert f"{stage}" in text, text
    assert "events/s" in text and "100%" in text, text  # the rate; the whole of the stage
    assert "<00:00" in text, text  # the time left
    code, said = await asyncio.to_thread(on_pipe, argv, env)
    assert code == 0, said
    assert b"\r" not in said and b"events/s" not in said, said
    assert not any(stage.encode() in said for stage in stages), said


def test_progress_draws_nothing_where_it_is_not_on_a_terminal():
    """A file or a pipe is not a terminal: not a byte."""
    out = io.StringIO()
    progress = Progress(out=out)
    progress.stage("loading", 10_000)
    for _ in range(10_000):
        progress.add()
    progress.done()
    assert out.getvalue() == ""
    assert progress.count == 10_000


def test_progress_shows_each_stage_to_its_end_and_clears_it():
    """Enabled, each stage's bar ends at its total with a rate, then leaves the line empty."""
    out = io.StringIO()
    progress = Progress(out=out, enabled=True)
    progress.stage("checking", 5_000)
    progress.add(5_000)
    progress.stage("rebuilding", 90)
    progress.reach(90)
    progress.done()
    text = out.getvalue()
    assert "checking: 100%" in text and "5.00k/5.00k" in text, text
    assert "rebuilding: 100%" in text and "90.0/90.0" in text, text
    assert "events/s]" in text, text
    assert text.endswith("\r"), text  # cleared: what the command prints next stands alone


def test_a_stage_ends_once():
    """Ending a stage again (a command's own end, then its context's) draws nothing more."""
    out = io.StringIO()
    with Progress(out=out, enabled=True) as progress:
        progress.stage("folding the log", 10)
        progress.reach(10)
        progress.done()
        drawn = out.getvalue()
    assert out.getvalue() == drawn and drawn.count("folding the log: 100%") == 1, drawn
