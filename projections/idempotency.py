"""Idempotency keys: what a write sent with `Idempotency-Key` records, and the fold's index
of the keys recorded lately, by which a retry is answered with the first attempt's events.

A command sent with a key carries it in its events' meta (eventstore.record): the first
event holds `{"idempotency_key": K, "request": {"method", "path", "body_sha256"}}`, any
further ones `{"idempotency_key": K}`. The events of one command are written together,
so they are one run of consecutive ids in the log. The index maps each key to its request
and that run; it forgets keys recorded more than RETENTION of log time before the newest
event folded (the log keeps them: the store refuses a key once used, see IdempotencyKeyTakenError).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import NamedTuple

import attrs

from domain.codec import decode_meta, encode_meta
from eventstore.record import NewEvent, RecordedEvent

#: How long (in log time: commit times of the events) a key's answer is remembered.
RETENTION = timedelta(hours=24)


@attrs.frozen
class Idempotency:
    """A write's Idempotency-Key and the request it came with: (method, path, body sha256)."""

    key: str
    request: tuple[str, str, str]

    def meta(self, first: bool) -> bytes:
        """The meta of a command's first event (`first`) or of a later one."""
        return encode_meta(self.fields(first))

    def fields(self, first: bool) -> dict[str, object]:
        """What this key puts into the meta of a command's first event, or of a later one."""
        if not first:
            return {"idempotency_key": self.key}
        method, path, body_sha256 = self.request
        return {
            "idempotency_key": self.key,
            "request": {"method": method, "path": path, "body_sha256": body_sha256},
        }

    def mark(self, events: list[NewEvent]) -> list[NewEvent]:
        """`events` (one command's) carrying this key."""
        return [attrs.evolve(event, meta=self.meta(first=n == 0)) for n, event in enumerate(events)]


class KeyedWrite(NamedTuple):
    """A key's write as the log holds it: its request, its events' ids, its commit time."""

    request: tuple[str, str, str] | None  # None: its first event is not in the log
    first_id: int
    last_id: int
    at: datetime


#: key -> its write, in log order (oldest first).
IdempotencyIndex = OrderedDict[str, KeyedWrite]


#: In the meta of every event written with a key. Inside a JSON string a quote is escaped,
#: so a meta without these bytes holds no key (most events: they carry only their actor).
_KEY_FIELD = b'"idempotency_key"'


def key_of(record: RecordedEvent) -> str | None:
    """The Idempotency-Key a recorded event was written with, if any."""
    if record.meta is None or _KEY_FIELD not in record.meta:
        return None
    key = decode_meta(record.meta).get("idempotency_key")
    return key if isinstance(key, str) else None


def fold(index: IdempotencyIndex, record: RecordedEvent) -> None:
    """Index `record` (one with meta) under its key."""
    if record.meta is None or _KEY_FIELD not in record.meta:
        return
    meta = decode_meta(record.meta)
    key = meta.get("idempotency_key")
    if not isinstance(key, str):
        return
    known = index.get(key)
    if known is None:
        index[key] = KeyedWrite(
            _request(meta.get("request")), record.id, record.id, record.created_at
        )
    elif known.last_id < record.id:
        index[key] = known._replace(last_id=record.id)


def forget_before(index: IdempotencyIndex, newest: datetime) -> None:
    """Drop the keys recorded more than RETENTION before `newest`."""
    cutoff = newest - RETENTION
    while index:
        key, write = next(iter(index.items()))
        if write.at >= cutoff:
            return
        del index[key]


def _request(doc: object) -> tuple[str, str, str] | None:
    if not isinstance(doc, dict):
        return None
    method, path, body_sha256 = doc.get("method"), doc.get("path"), doc.get("body_sha256")
    if isinstance(method, str) and isinstance(path, str) and isinstance(body_sha256, str):
        return method, path, body_sha256
    return None
