"""Flynn's times read and written: what a client may send is an RFC 3339 time or a
ValueError, never another error."""

from datetime import UTC, datetime

import pytest

from domain.timefmt import format_time, parse_time


def test_a_time_reads_back_as_it_was_written():
    """format_time's text parses to the same instant, fraction trimmed as Go's RFC3339Nano."""
    moment = datetime(2015, 12, 16, 2, 21, 6, 714240, tzinfo=UTC)
    assert format_time(moment) == "2015-12-16T02:21:06.71424Z"
    assert parse_time(format_time(moment)) == moment
    assert parse_time("2015-12-16T04:21:06.71424+02:00") == moment


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00", "2015-12-16 02:21", "soon"],
)
def test_a_time_outside_utcs_range_or_not_rfc_3339_is_a_value_error(text: str):
    """An offset that carries the instant past the year 9999 (or before 1) is refused as
    any malformed time is, so that every caller's ValueError handling covers it."""
    with pytest.raises(ValueError):
        parse_time(text)
