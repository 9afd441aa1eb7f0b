"""The SDK's exceptions, one class per server error code, built from an HTTP answer in one place.

ThradError                  anything the SDK raises; .status, .code, .request_id, .details
├── APIConnectionError      no HTTP answer at all: connect, read or write failure, timeout
├── InvalidRequestError     400 invalid_json, missing_field (never retried)
├── AuthenticationError     401 unauthorized: missing, unknown, revoked or expired key
├── NotFoundError           404 for a path the server does not have (an older server)
│   └── ClickNotFoundError  404 click_not_found: the conversion's click_id is unknown
├── RequestTimeoutError     408 request_timeout: the body came too slowly (retried)
├── PayloadTooLargeError    413 payload_too_large
├── ValidationError         422 validation_error, .details names the fields
├── RateLimitError          429 rate_limited, .retry_after in seconds (retried)
├── ServerError             5xx, e.g. 503 unavailable (retried)
├── APIError                any other answer the SDK did not expect
└── EventDroppedError       the background sender dropped an event it never sent (.code says
                            why: queue_full, sender_closed, not_sent_at_close)

Only APIConnectionError, RequestTimeoutError, RateLimitError and ServerError are retried: the
request may not have reached the server, or the server asked for a later try; see retry.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "ClickNotFoundError",
    "ErrorDetail",
    "EventDroppedError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "ThradError",
    "ValidationError",
    "error_for_code",
    "error_from_response",
]


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One field the server complained about (`details` of the JSON error body)."""

    field: str
    message: str


class ThradError(Exception):
    """Base of every SDK error; `code` is the server's error code when it answered one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: list[ErrorDetail] | None = None,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details: list[ErrorDetail] = details or []
        # The server's JSON error body as received, e.g. for printing it unchanged.
        self.body = body
        # Seconds the server asked to wait (Retry-After), on 429 and 503 answers.
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        where = f"status {self.status}, code {self.code or '-'}"
        if self.request_id:
            where += f", request id {self.request_id}"
        return f"{self.message} ({where})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )

    @property
    def fields(self) -> list[str]:
        """The names of the fields in `details`."""
        return [detail.field for detail in self.details]

    def to_json(self) -> dict[str, Any]:
        """The server's error body when there was one, else the same shape built locally."""
        if self.body is not None:
            return self.body
        return {
            "error": {
                "code": self.code or _LOCAL_CODES.get(type(self), "error"),
                "message": self.message,
                "details": [{"field": d.field, "message": d.message} for d in self.details],
            }
        }


class APIConnectionError(ThradError):
    """The request got no HTTP answer: DNS, connect, TLS, read or write failure, or a timeout."""


class InvalidRequestError(ThradError):
    """400: the body is not a JSON object, or a required field is missing."""


class AuthenticationError(ThradError):
    """401: the API key is missing, malformed, unknown, revoked or expired."""


class NotFoundError(ThradError):
    """404 for a path: the server does not serve this endpoint (e.g. batches on an older one)."""


class ClickNotFoundError(NotFoundError):
    """404 click_not_found: no click has the conversion's click_id."""


class RequestTimeoutError(ThradError):
    """408: the server stopped waiting for a body sent too slowly; nothing of it was stored."""


class PayloadTooLargeError(ThradError):
    """413: the body, or the number of batch items, is over the server's limit."""


class ValidationError(ThradError):
    """422: a field has the wrong type or format; `details` names each field and why."""


class RateLimitError(ThradError):
    """429: the key is over its rate limit; `retry_after` is the wait the server asked for."""


class ServerError(ThradError):
    """5xx: the server could not take the request now (503 unavailable: storage saturated)."""


class APIError(ThradError):
    """An answer the SDK does not expect: another status, or a body it cannot read."""


class EventDroppedError(ThradError):
    """The background sender gave up on events without sending them; `code` says why.

    queue_full: the queue was full (the sender never blocks the caller); sender_closed: the
    event came after close(); not_sent_at_close: close() or exit ran out of time.
    """


_BY_STATUS: dict[int, type[ThradError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}

_BY_CODE: dict[str, tuple[type[ThradError], int]] = {
    "invalid_json": (InvalidRequestError, 400),
    "missing_field": (InvalidRequestError, 400),
    "unauthorized": (AuthenticationError, 401),
    "click_not_found": (ClickNotFoundError, 404),
    "not_found": (NotFoundError, 404),
    "request_timeout": (RequestTimeoutError, 408),
    "payload_too_large": (PayloadTooLargeError, 413),
    "validation_error": (ValidationError, 422),
    "rate_limited": (RateLimitError, 429),
    "unavailable": (ServerError, 503),
}

_LOCAL_CODES: dict[type[ThradError], str] = {
    APIConnectionError: "connection_error",
}


def error_details(raw: Any) -> list[ErrorDetail]:
    if not isinstance(raw, list):
        return []
    return [
        ErrorDetail(str(item.get("field", "")), str(item.get("message", "")))
        for item in raw
        if isinstance(item, dict)
    ]


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Retry-After as seconds; None when absent, negative or not a number of seconds."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None  # an HTTP-date: the server we talk to sends seconds, so fall back to backoff
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    return seconds


def error_for_code(
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    *,
    request_id: str | None = None,
    body: dict[str, Any] | None = None,
) -> ThradError:
    """The exception for a server error code without an HTTP status (a batch item's error)."""
    cls, status = _BY_CODE.get(code, (APIError, None))
    return cls(message, status=status, code=code, request_id=request_id, details=details, body=body)


def error_from_response(response: httpx.Response) -> ThradError:
    """Map a non-2xx answer to its exception; the JSON error body is read when there is one."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    code: str | None = None
    message = f"HTTP {status}"
    details: list[ErrorDetail] = []
    body: dict[str, Any] | None = None
    try:
        parsed = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        body = parsed
        error = parsed["error"]
        code = str(error["code"]) if error.get("code") is not None else None
        message = str(error.get("message") or message)
        details = error_details(error.get("details"))
    elif response.content:
        message = f"HTTP {status}: {response.text[:200]}"
    if code in _BY_CODE and _BY_CODE[code][1] == status:
        cls = _BY_CODE[code][0]
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, APIError)
    retryable = status in (408, 429) or status >= 500
    retry_after = retry_after_seconds(response.headers) if retryable else None
    return cls(
        message,
        status=status,
        code=code,
        request_id=request_id,
        details=details,
        body=body,
        retry_after=retry_after,
    )


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    """The SDK's error for a request that got no answer; the httpx error is its __cause__."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return APIConnectionError(f"no answer from the server: {reason}")
