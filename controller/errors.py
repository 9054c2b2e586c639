"""Domain errors -> HTTP status and Flynn's error document {code, message, detail?, retry}."""

from __future__ import annotations

from typing import Any

import orjson

from commands.errors import (
    AlreadyExistsError,
    ConflictError,
    DomainError,
    JSONSyntaxError,
    NotFoundError,
    PreconditionFailedError,
    UnavailableError,
    UpstreamError,
    ValidationError,
)

# Flynn: pkg/httphelper/httphelper.go errorResponseCodes.
ERROR_STATUS: dict[type[DomainError], tuple[int, str, bool]] = {
    ValidationError: (400, "validation_error", False),
    JSONSyntaxError: (400, "syntax_error", False),
    NotFoundError: (404, "object_not_found", False),
    AlreadyExistsError: (409, "object_exists", False),
    ConflictError: (409, "conflict", False),
    PreconditionFailedError: (412, "precondition_failed", False),
    UpstreamError: (502, "unknown_error", True),
    UnavailableError: (503, "service_unavailable", True),
}


def error_document(code: str, message: str, detail: Any = None, retry: bool = False) -> bytes:
    doc: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        doc["detail"] = detail
    doc["retry"] = retry  # always present (Flynn's JSONError)
    return orjson.dumps(doc)


def describe(error: DomainError) -> tuple[int, bytes]:
    """Status and body for a domain error."""
    status, code, retry = ERROR_STATUS[type(error)]
    detail: Any = None
    if isinstance(error, ValidationError):
        detail = (
            error.detail
            if error.detail is not None
            else ({"field": error.field} if error.field else None)
        )
    elif isinstance(error, ConflictError):
        detail, retry = error.detail, error.retry
    elif isinstance(error, UnavailableError):
        retry = error.retry
    return status, error_document(code, error.message, detail, retry)
