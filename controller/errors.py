"""Domain errors -> HTTP status and Flynn's error document {code, message, detail?, retry}."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from commands.errors import (
    AlreadyExistsError,
    ConflictError,
    DomainError,
    ForbiddenError,
    JSONSyntaxError,
    NotFoundError,
    PreconditionFailedError,
    UnavailableError,
    UpstreamError,
    ValidationError,
)

#: Seconds a 503 asks the client to wait before it retries (its Retry-After header).
RETRY_AFTER = 1
#: A 503 always says why; this when the error itself had nothing to say.
UNAVAILABLE_MESSAGE = "the service is unavailable; retry later"


class RequestTimeoutError(DomainError):
    """The request's body did not arrive in time (BODY_TIMEOUT): 408."""


# Flynn: pkg/httphelper/httphelper.go errorResponseCodes.
ERROR_STATUS: dict[type[DomainError], tuple[int, str, bool]] = {
    ValidationError: (400, "validation_error", False),
    JSONSyntaxError: (400, "syntax_error", False),
    # Flynn has no 403: its keys are all-powerful. Its error document, with a code of ours.
    ForbiddenError: (403, "forbidden", False),
    NotFoundError: (404, "object_not_found", False),
    RequestTimeoutError: (408, "request_timeout", False),
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
    message = error.message
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
    if status == 503:
        message = message.strip() or UNAVAILABLE_MESSAGE
    return status, error_document(code, message, detail, retry)


def error_response(status: int, body: bytes) -> web.Response:
    """An error document as the answer. Every 503 says when to retry (Retry-After); a 408 or
    413 closes the connection, whose unread body would otherwise be read as the next request
    or waited for."""
    response = web.Response(status=status, body=body, content_type="application/json")
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER)
    elif status in (408, 413):
        response.force_close()
    return response
