"""Flynn's time format: RFC 3339 in UTC, fraction trimmed of trailing zeros (Go's RFC3339Nano)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Go's zero time, which Flynn prints for unset non-pointer times.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_NO_OFFSET = timedelta(0)


#: Times formatted lately, and their text: an object's created_at and updated_at are often
#: one time, which one write formats for the log, the response, the event stream and the
#: SQL read model (bench/README.md: its share of a POST /apps). A datetime caches its hash.
_formatted: dict[datetime, str] = {}
_FORMATTED_MAX = 256


def format_time(moment: datetime) -> str:
    """`2015-12-16T02:21:06.71424Z`: microseconds, trailing zeros and a zero fraction dropped."""
    if moment.tzinfo is not None:
        text = _formatted.get(moment)  # equal instants, whatever their offsets, share a text
        if text is not None:
            return text
    given = moment
    if moment.utcoffset() != _NO_OFFSET or moment.tzinfo is None:
        moment = moment.astimezone(UTC)
    # isoformat is C and four times cheaper than strftime; in UTC it ends in "+00:00".
    text = moment.isoformat()[:-6]
    if moment.microsecond:
        text = text.rstrip("0")
    text += "Z"
    if given.tzinfo is not None:
        if len(_formatted) >= _FORMATTED_MAX:
            _formatted.clear()
        _formatted[given] = text
    return text


#: The last time parsed on the fast path. The objects of one command share its time
#: (an app, its route, its release...), and an immutable datetime can be shared: -300
#: bytes per app of a big read model.
_last: tuple[str, datetime] = ("", ZERO_TIME)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; nanoseconds are cut to microseconds."""
    global _last
    if text == _last[0]:
        return _last[1]
    # The log's own times ("...Z", as format_time writes them) take this branch: two of
    # every event's few microseconds of decoding went to the general path's checks.
    if type(text) is str and text[10:11] == "T" and text[-1:] == "Z":
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is UTC:
            _last = (text, moment)
            return moment
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 time without an offset: {text!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # an offset past the year 1 or 9999
        raise ValueError(f"RFC 3339 time out of range in UTC: {text!r}") from None
