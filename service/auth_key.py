"""The API key: AUTH_KEY's, or one generated on the first start and kept in the data directory
(`auth_key`), read by the service and by the command line's clients of it alike."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import attrs

from service.settings import Settings

FILE_NAME = "auth_key"


def key_file(settings: Settings) -> Path:
    """Where a generated key is kept."""
    return settings.data_dir / FILE_NAME


def with_keys(settings: Settings) -> tuple[Settings, str | None]:
    """`settings` with its keys: AUTH_KEY's, else the kept one, else a new one written to
    the key file (readable by its owner only). The second item is a key generated now."""
    if settings.auth_keys:
        return settings, None
    path = key_file(settings)
    if path.exists():
        return attrs.evolve(settings, auth_keys=(path.read_text().strip(),)), None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return attrs.evolve(settings, auth_keys=(key,)), key


def client_key(settings: Settings) -> str | None:
    """The key a client on this machine uses, as the service would find it (never made)."""
    if settings.auth_keys:
        return settings.auth_keys[0]
    path = key_file(settings)
    return path.read_text().strip() if path.is_file() else None
