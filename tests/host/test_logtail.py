"""The local host's log tails: the job's output files read line by line."""

from pathlib import Path

from host.logtail import MAX_LINE, Tail


def test_a_tail_yields_complete_lines_and_keeps_the_unterminated_rest(tmp_path: Path):
    """Lines come out whole; a partial line waits for its end, or for the job's end."""
    log = tmp_path / "stdout.log"
    log.write_bytes(b"one\r\ntw")
    tail = Tail(log, "stdout", from_end=False, max_bytes=1 << 20)
    try:
        assert tail.read() == ["one"]
        with log.open("ab") as f:
            f.write(b"o\nthree")
        assert tail.read() == ["two"]
        assert tail.rest() == ["three"]
    finally:
        tail.close()


def test_a_tail_empties_a_file_past_its_limit_and_follows_it_from_the_start(tmp_path: Path):
    """Once read past max_bytes to its end the file is emptied; later lines are still read."""
    log = tmp_path / "stdout.log"
    log.write_bytes(b"x" * 50 + b"\n")
    tail = Tail(log, "stdout", from_end=False, max_bytes=10)
    try:
        assert tail.read() == ["x" * 50]
        assert log.stat().st_size == 0
        with log.open("ab") as f:
            f.write(b"after\n")
        assert tail.read() == ["after"]
    finally:
        tail.close()


def test_a_very_long_line_is_cut_into_pieces(tmp_path: Path):
    """A line longer than MAX_LINE comes out in MAX_LINE pieces."""
    log = tmp_path / "stdout.log"
    log.write_bytes(b"y" * (MAX_LINE * 2 + 1) + b"\n")
    tail = Tail(log, "stdout", from_end=False, max_bytes=1 << 30)
    try:
        assert [len(line) for line in tail.read()] == [MAX_LINE, MAX_LINE, 1]
    finally:
        tail.close()
