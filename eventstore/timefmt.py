"""Flynn's time format: RFC 3339 in UTC, fraction trimmed of trailing zeros (Go's RFC3339Nano)."""

from __future__ import annotations

from datetime import UTC, datetime

#: Go's zero time, which Flynn prints for unset non-pointer times.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """`2015-12-16T02:21:06.71424Z`: microseconds, trailing zeros and a zero fraction dropped."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") if moment.year >= 1000 else (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; nanoseconds are cut to microseconds."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 time without an offset: {text!r}")
    return moment.astimezone(UTC)

