"""Ids: new ones drawn for objects, and the uuid shapes clients may give in their stead."""

from __future__ import annotations

import os
import re
from typing import Any

#: Random bytes for new ids, drawn from the OS 4 KB at a time: uuid.uuid4() makes one
#: getrandom() call per id, a measurable share of a POST /apps (bench/README.md).
_random = b""
_VARIANT = "89ab"  # RFC 4122: the variant's two high bits are 10
# Flynn: controller/data/app.go — a path segment shaped like a uuid is an id or a name;
# anything else is a name. Upper-case hex is a name.
_UUID_SHAPED = re.compile(r"[a-f0-9]{8}-?(?:[a-f0-9]{4}-?){3}[a-f0-9]{12}")


def _forget_random() -> None:
    global _random
    _random = b""  # a forked child must not hand out its parent's ids


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A random (version 4) uuid, as str(uuid.uuid4()) would give."""
    global _random
    if not _random:
        _random = os.urandom(4096)
    h, _random = _random[:16].hex(), _random[16:]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def canonical_uuid(text: str) -> str | None:
    """`text` as a dashed lower-case uuid if it is uuid-shaped (dashed or not), else None."""
    if not _UUID_SHAPED.fullmatch(text):
        return None
    hexdigits = text.replace("-", "")
    if len(hexdigits) != 32:
        return None
    return (
        f"{hexdigits[:8]}-{hexdigits[8:12]}-{hexdigits[12:16]}-{hexdigits[16:20]}-{hexdigits[20:]}"
    )


def given_id(doc: dict[str, Any], new_id: str) -> str:
    """A client-chosen id (dashed or not, any case) in canonical form, else the server's."""
    given = doc.get("id")
    if isinstance(given, str) and given:
        return canonical_uuid(given.lower()) or new_id
    return new_id
