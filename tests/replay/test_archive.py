"""The backup archive: lines keep every field byte for byte, and only a whole, untouched
archive reads back."""

import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.record import RecordedEvent
from replay.archive import ArchiveError, ArchiveWriter, decode_line, encode_line
from replay.reader import ArchiveReader, read_manifest

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
# Payloads as stored: compact orjson, or text with spaces and escapes Postgres keeps as is.
payloads = json_values.map(orjson.dumps) | st.sampled_from(
    [b'{ "a" : [1, 2.50, "\\u00e9"] }', b'{"s":"a,\\"data\\":b"}', b"null", b"[]"]
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
records = st.builds(
    RecordedEvent,
    st.integers(1, 2**63 - 1),
    texts,
    texts,
    texts,
    st.none() | st.uuids().map(str),
    st.none() | st.sampled_from(["op_create", "op_update"]),
    st.none() | texts,
    payloads,
    moments,
    st.none() | st.dictionaries(texts, json_values, max_size=3).map(orjson.dumps),
)
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@given(records)
def test_a_line_decodes_to_the_very_event_it_encodes(record: RecordedEvent):
    """Every field survives, the payload byte for byte and the time to the microsecond."""
    line = encode_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_line(line) == record


def history(n: int) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            i,
            "AppCreated",
            "app",
            f"id-{i}",
            None,
            None,
            None,
            b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i % 50)),
            T0 + timedelta(microseconds=i),
        )
        for i in range(1, n + 1)
    ]


def archive_of(events: list[RecordedEvent], part_bytes: int = 1000) -> bytes:
    writer = ArchiveWriter(T0, part_bytes=part_bytes, first_part_bytes=200)
    return b"".join(writer.add(e) for e in events) + writer.finish(events[-1].id if events else 0)


def test_an_archive_reads_back_its_events_across_parts(tmp_path):
    """Small parts: many members, the same events in order, a manifest that adds up."""
    events = history(100)
    path = tmp_path / "a.tar"
    path.write_bytes(archive_of(events))
    reader = ArchiveReader(path)
    assert list(reader) == events
    manifest = reader.manifest
    assert manifest is not None and manifest == read_manifest(path)
    assert len(manifest.parts) > 5 and manifest.parts[0].bytes >= 200
    assert sum(p.event_count for p in manifest.parts) == manifest.event_count == 100
    assert (manifest.first_event_id, manifest.last_event_id) == (1, 100)
    assert manifest.created_at == "2026-11-27T09:00:00.000000Z"


@settings(max_examples=60)
@given(st.data())
def test_a_truncated_archive_never_reads_as_complete(data: st.DataObject):
    """Cut anywhere, the archive fails to read: no partial log passes for a backup."""
    whole = archive_of(history(40))
    cut = data.draw(st.integers(0, len(whole) - 1024 - 1))  # before the end-of-archive blocks
    with pytest.raises(ArchiveError):
        list(ArchiveReader(io.BytesIO(whole[:cut])))


def test_a_changed_byte_is_caught_by_the_hashes():
    """A payload edited in place (still valid JSON, same size) fails the part's checksum."""
    whole = archive_of(history(40))
    damaged = whole.replace(b'{"n":7,', b'{"n":8,', 1)
    assert damaged != whole
    with pytest.raises(ArchiveError, match="manifest"):
        list(ArchiveReader(io.BytesIO(damaged)))


def test_the_writer_refuses_events_out_of_order():
    """The log is written in id order, or not at all."""
    writer = ArchiveWriter(T0)
    writer.add(history(2)[1])
    with pytest.raises(ValueError, match="id order"):
        writer.add(history(1)[0])
