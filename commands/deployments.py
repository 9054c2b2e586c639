"""Deployments commands and their deciders."""

from __future__ import annotations

from typing import Any

HANDLERS: dict[type, Any] = {}
