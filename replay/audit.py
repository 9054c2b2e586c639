"""The audit view: who did what, and when, from the actors the log's events carry.

`evenflow replay audit` reads the whole log (or a backup) oldest first; `GET /audit` reads
it newest first, a page at a time. One entry per event: its id, time, type and object, its
app, its actor (domain.actors: the key's name, request id, client address and user agent,
or the component that decided it and its cause) and a line that says what happened. Events
written before actors existed have none (`"actor": null`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import attrs

from domain.actors import Actor
from domain.codec import UnknownEventError, actor_of, decode
from domain.objects import JSON
from domain.timefmt import format_time
from eventstore.record import EventFilter, RecordedEvent
from eventstore.store import EventStore
from replay.history import summary, who_text
from replay.progress import Progress
from replay.source import LogSource

#: Events looked at for one page of GET /audit at most: a page with fewer entries than asked
#: (and a cursor) says the rest of the log is for the next pages.
SCAN_LIMIT = 20_000
_PAGE = 1_000


@attrs.frozen
class AuditQuery:
    """Which events an audit shows: by actor (a key's name or a component), app, time."""

    actor: str | None = None
    app_id: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # at or before

    def wants(self, record: RecordedEvent, actor: Actor | None) -> bool:
        if self.since is not None and record.created_at < self.since:
            return False
        if self.until is not None and record.created_at > self.until:
            return False
        return self.actor is None or (actor is not None and actor.names(self.actor))


def entry(record: RecordedEvent, actor: Actor | None) -> JSON:
    """One event as the audit shows it (its data is not shown: it may hold secrets)."""
    doc: JSON = {
        "id": record.id,
        "created_at": format_time(record.created_at),
        "type": record.type,
        "object_type": record.object_type,
        "object_id": record.object_id,
    }
    if record.app_id is not None:
        doc["app"] = record.app_id
    doc["actor"] = None if actor is None else actor.to_json()
    try:
        doc["summary"] = summary(decode(record))
    except UnknownEventError:
        doc["summary"] = record.type
    return doc


async def audit_entries(
    source: LogSource, query: AuditQuery, progress: Progress | None = None
) -> list[JSON]:
    """Every event of the log `query` wants, oldest first."""
    found = []
    async for record in source.read(filter=EventFilter(app_id=query.app_id)):
        if progress is not None:
            progress.reach(record.id)
        actor = actor_of(record)
        if query.wants(record, actor):
            found.append(entry(record, actor))
    return found


async def audit_page(
    store: EventStore,
    query: AuditQuery,
    visible: EventFilter,
    before_id: int | None,
    count: int,
) -> tuple[list[JSON], int | None]:
    """Up to `count` entries `query` wants among the events `visible` lets through, newest
    first, before event `before_id`; and the `before_id` of the next page (None: no more).

    At most SCAN_LIMIT events are looked at: a page may come back short, with a cursor.
    """
    cursor = before_id
    if query.until is not None:
        after_until = await _first_after(store, query.until)
        if after_until is not None:
            cursor = after_until if cursor is None else min(cursor, after_until)
    entries: list[JSON] = []
    scanned = 0
    while scanned < SCAN_LIMIT:
        page = [
            record
            async for record in store.read_backward(
                before_id=cursor, count=min(_PAGE, SCAN_LIMIT - scanned), filter=visible
            )
        ]
        if not page:
            return entries, None
        for record in page:
            scanned += 1
            cursor = record.id
            if query.since is not None and record.created_at < query.since:
                return entries, None  # ids follow commit times: nothing older is wanted
            actor = actor_of(record)
            if query.wants(record, actor):
                entries.append(entry(record, actor))
                if len(entries) >= count:
                    return entries, cursor
    return entries, cursor


async def _first_after(store: EventStore, moment: datetime) -> int | None:
    """The id of the first event committed after `moment` (None: there is none).

    A binary search over ids (commit times grow with them), one short read per step.
    """
    lo, hi = 0, await store.last_id()  # every event up to lo is at or before moment
    while lo < hi:
        mid = (lo + hi + 1) // 2
        first = await _first_from(store, mid)
        if first is None or first.id > hi or first.created_at > moment:
            hi = mid - 1
        else:
            lo = first.id
    return await _first_id_from(store, lo + 1)


async def _first_from(store: EventStore, event_id: int) -> RecordedEvent | None:
    """The first event with an id of `event_id` or more."""
    records: AsyncIterator[RecordedEvent] = store.read(after=event_id - 1, page_size=1)
    async with contextlib.aclosing(records):  # type: ignore[type-var, unused-ignore]
        async for record in records:
            return record
    return None


async def _first_id_from(store: EventStore, event_id: int) -> int | None:
    first = await _first_from(store, event_id)
    return None if first is None else first.id


def audit_text(entries: list[JSON]) -> str:
    """The entries for a terminal: one line each, what a client sent escaped."""
    lines = [f"{len(entries)} events", ""]
    for e in entries:
        who = who_text(e["actor"])
        lines.append(f"{e['id']:>10}  {e['created_at']:<28}  {who:<40}  {e['summary']}")
    return "\n".join(lines) + "\n"
