"""Flynn's time format: RFC 3339 in UTC, fraction trimmed of trailing zeros (Go's RFC3339Nano)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Go's zero time, which Flynn prints for unset non-pointer times.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_NO_OFFSET = timedelta(0)


def format_time(moment: datetime) -> str:
    """`2015-12-16T02:21:06.71424Z`: microseconds, trailing zeros and a zero fraction dropped."""
    if moment.utcoffset() != _NO_OFFSET or moment.tzinfo is None:
        moment = moment.astimezone(UTC)
    # isoformat is C and four times cheaper than strftime; in UTC it ends in "+00:00".
    text = moment.isoformat()[:-6]
    if moment.microsecond:
        text = text.rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; nanoseconds are cut to microseconds."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 time without an offset: {text!r}")
    return moment.astimezone(UTC)

