"""The names the server gives apps created without one: "<adjective>-<noun>-<n>"."""

from __future__ import annotations

from collections.abc import Container

_ADJECTIVES = (
    "amber", "brave", "calm", "dusty", "eager", "fancy", "gentle", "happy", "icy", "jolly",
    "kind", "lucky", "merry", "noble", "olive", "proud", "quiet", "rapid", "sunny", "tidy",
    "upbeat", "vivid", "witty", "young", "zesty",
)  # fmt: skip
_NOUNS = (
    "otter", "falcon", "badger", "heron", "lynx", "marmot", "narwhal", "orca", "panda",
    "quokka", "raven", "seal", "tapir", "urchin", "vole", "walrus", "yak", "zebra", "bison",
    "crane", "dingo", "egret", "ferret", "gecko", "ibex",
)  # fmt: skip


def generated_app_name(sequence: int, taken: Container[str]) -> str:
    """The first free name from `sequence` on: "<adjective>-<noun>-<n>"."""
    n = sequence
    while True:
        name = (
            f"{_ADJECTIVES[n % len(_ADJECTIVES)]}-"
            f"{_NOUNS[(n // len(_ADJECTIVES)) % len(_NOUNS)]}-{n + 1}"
        )
        if name not in taken:
            return name
        n += 1
