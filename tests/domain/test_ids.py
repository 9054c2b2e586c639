"""Ids: the ones the server draws, and the uuid shapes a client may give instead."""

import uuid

from domain.ids import canonical_uuid, given_id, new_id


def test_new_ids_are_distinct_version_4_uuids():
    """Every new id is a dashed lower-case version 4 uuid, and none repeats."""
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_uuid_shaped_reference_is_canonicalized_and_anything_else_is_not():
    """Dashed or not, a lower-case uuid comes back dashed; upper case or other shapes are None."""
    dashed = "0b0e3a5c-7c1e-4f6a-9d2b-1a2b3c4d5e6f"
    assert canonical_uuid(dashed) == dashed
    assert canonical_uuid(dashed.replace("-", "")) == dashed
    assert canonical_uuid(dashed.upper()) is None
    assert canonical_uuid("my-app") is None


def test_a_given_id_is_taken_in_canonical_form_else_the_servers():
    """A client's id wins once canonicalized (any case); a missing or unusable one does not."""
    server = "11111111-2222-4333-8444-555555555555"
    assert given_id({"id": "0B0E3A5C7C1E4F6A9D2B1A2B3C4D5E6F"}, server) == (
        "0b0e3a5c-7c1e-4f6a-9d2b-1a2b3c4d5e6f"
    )
    assert given_id({}, server) == server
    assert given_id({"id": "not-a-uuid"}, server) == server
