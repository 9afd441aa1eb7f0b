"""Request outcomes and the one error hierarchy raised deep and mapped to HTTP in http/errors.py.

IngestError                 every reason a request is not stored
├── InvalidJson             body is not JSON, not an object, or not UTF-8
├── MissingField            a required field is missing or null
├── ValidationFailed        a field has the wrong type or format
├── PayloadTooLarge         body over the size limit
├── UnsupportedEncoding     Content-Encoding other than gzip
├── HeadersTooLarge         request line and headers over 64 KiB, or over 100 header lines
├── RequestTimeout          request head or body not received in time
├── BadRequest              HTTP the parser cannot read
├── Unauthorized            Authorization missing, malformed, unknown, revoked, expired
├── Forbidden               a valid key asking for what only an operator may see
├── ClickNotFound           conversion click_id unknown
├── NotFound                an administered partner, key or tag that does not exist
├── Conflict                an operator's change the record's state forbids (a name or tag_id
│                           taken, a key revoked)
├── BadClickLink            click link unsigned, tampered or malformed
├── OriginNotAllowed        a browser Tag request from an origin its tag does not list
├── BadClickSignature       a browser conversion whose thrad_sig fails or whose thrad_exp passed
├── RateLimited             key over its rate limit
└── Unavailable             storage unreachable or saturated
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, Self


class Outcome(enum.StrEnum):
    """How a request ended; the names are reused in error codes, logs and metric labels."""

    STORED = "stored"
    # A HEAD on a click link: answered with the link's landing URL, no click stored.
    PREVIEWED = "previewed"
    # A read (a report) answered in full.
    SERVED = "served"
    # A request with ?validate_only=true: checked and answered, nothing stored.
    VALIDATED = "validated"
    DUPLICATE = "duplicate"
    INVALID_JSON = "invalid_json"
    MISSING_FIELD = "missing_field"
    VALIDATION_ERROR = "validation_error"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    REQUEST_TIMEOUT = "request_timeout"
    HEADERS_TOO_LARGE = "request_header_fields_too_large"
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    CLICK_NOT_FOUND = "click_not_found"
    BAD_CLICK_LINK = "bad_click_link"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    BAD_CLICK_SIGNATURE = "bad_click_signature"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


class KeyOwner(Protocol):
    """An API key as a refusal names it: its partner and its id (an ApiKeyRecord)."""

    @property
    def partner_id(self) -> str: ...

    @property
    def key_id(self) -> str: ...


class IngestError(Exception):
    """Base of every rejection; `outcome` is also the JSON error code."""

    outcome: Outcome = Outcome.INTERNAL
    # Who sent the refused request, once its key is known (for the rejection log), and the
    # start of its body once read (for the rejections kept: never logged).
    partner_id: str | None = None
    key_id: str | None = None
    body: bytes | None = None

    def __init__(self, message: str, details: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def sent_with(self, key: KeyOwner) -> Self:
        """This refusal, marked as a request sent with `key`."""
        self.partner_id, self.key_id = key.partner_id, key.key_id
        return self


def detach(error: BaseException) -> None:
    """Drop the tracebacks of a handled refusal and of the exceptions it was raised from.

    A traceback holds the frames it passed through, and a frame that still names its exception
    closes a reference cycle, which only the cyclic garbage collector frees: one heap of frames
    per refused request, and collections that grow with the refusals (BENCHMARKS.md). A refusal
    is answered, never logged with its traceback, so nothing needs them."""
    current: BaseException | None = error
    for _ in range(8):  # a refusal is raised from at most a few others
        if current is None:
            return
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


class InvalidJson(IngestError):
    outcome = Outcome.INVALID_JSON


class MissingField(IngestError):
    outcome = Outcome.MISSING_FIELD


class ValidationFailed(IngestError):
    outcome = Outcome.VALIDATION_ERROR


class PayloadTooLarge(IngestError):
    outcome = Outcome.PAYLOAD_TOO_LARGE


class UnsupportedEncoding(IngestError):
    outcome = Outcome.UNSUPPORTED_ENCODING


class RequestTimeout(IngestError):
    outcome = Outcome.REQUEST_TIMEOUT


class HeadersTooLarge(IngestError):
    outcome = Outcome.HEADERS_TOO_LARGE


class BadRequest(IngestError):
    outcome = Outcome.BAD_REQUEST


class Unauthorized(IngestError):
    outcome = Outcome.UNAUTHORIZED


class Forbidden(IngestError):
    outcome = Outcome.FORBIDDEN


class ClickNotFound(IngestError):
    outcome = Outcome.CLICK_NOT_FOUND


class NotFound(IngestError):
    outcome = Outcome.NOT_FOUND


class Conflict(IngestError):
    outcome = Outcome.CONFLICT


class BadClickLink(IngestError):
    outcome = Outcome.BAD_CLICK_LINK


class OriginNotAllowed(IngestError):
    outcome = Outcome.ORIGIN_NOT_ALLOWED


class BadClickSignature(IngestError):
    outcome = Outcome.BAD_CLICK_SIGNATURE


class RateLimited(IngestError):
    outcome = Outcome.RATE_LIMITED

    def __init__(self, message: str, retry_after_s: int, limit: int, remaining: int = 0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.limit = limit
        self.remaining = remaining


class Unavailable(IngestError):
    outcome = Outcome.UNAVAILABLE

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def field_error(cls: type[IngestError], field: str, message: str) -> IngestError:
    """An error about one field, with the field named in both message and details."""
    return cls(f"{field}: {message}", (FieldProblem(field, message),))
