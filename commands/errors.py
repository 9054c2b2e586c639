"""Domain errors of deciders, the dispatcher and the HTTP edge; mapped to Flynn's error document."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: every error a client can cause and be told about."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    """The object does not exist. Flynn answers a bare 404 with an empty body."""

    def __init__(self, message: str = "not found") -> None:
        super().__init__(message)


class ValidationError(DomainError):
    """The request is invalid. `field` is Flynn's dotted key path ("" when none)."""

    def __init__(self, field: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field} {message}" if field else message)
        self.field = field
        self.reason = message
        self.detail = detail


class JSONSyntaxError(DomainError):
    """The body is not JSON, or has a wrong JSON type (Flynn's syntax_error)."""

    def __init__(self, message: str = "The provided JSON input is invalid") -> None:
        super().__init__(message)


class AlreadyExistsError(DomainError):
    """A unique name is taken (Flynn's object_exists, 409)."""


class ConflictError(DomainError):
    """The request conflicts with current state (Flynn's conflict, 409)."""

    def __init__(self, message: str, detail: Any = None, retry: bool = False) -> None:
        super().__init__(message)
        self.detail = detail
        self.retry = retry


class ForbiddenError(DomainError):
    """The key is known, but its scope or its apps do not cover the request (403)."""


class PreconditionFailedError(DomainError):
    """A precondition of the request does not hold (412)."""


class UnavailableError(DomainError):
    """A dependency (the database, a provider) is unreachable (503). `retry` says whether
    sending the request again is safe (not after a write that may have been committed)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class UpstreamError(DomainError):
    """An outside service (a resource provider) answered badly (Flynn: 500 unknown_error)."""
