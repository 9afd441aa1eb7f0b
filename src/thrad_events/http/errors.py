"""The one place where a refusal becomes an HTTP answer: status, headers, JSON body.

Every error the service sends has this shape, whether an endpoint, the router (404, 405) or the
HTTP protocol (400, 408, 431, 503 before the app) refuses the request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from thrad_events.errors import IngestError, Outcome, RateLimited, Unavailable
from thrad_events.schemas import ErrorBody, ErrorDetail, ErrorResponse

log = logging.getLogger("thrad_events.http")

STATUS = {
    Outcome.INVALID_JSON: 400,
    Outcome.MISSING_FIELD: 400,
    Outcome.BAD_CLICK_LINK: 400,
    Outcome.VALIDATION_ERROR: 422,
    Outcome.UNAUTHORIZED: 401,
    Outcome.FORBIDDEN: 403,
    Outcome.ORIGIN_NOT_ALLOWED: 403,
    Outcome.BAD_CLICK_SIGNATURE: 403,
    Outcome.CLICK_NOT_FOUND: 404,
    Outcome.NOT_FOUND: 404,
    Outcome.METHOD_NOT_ALLOWED: 405,
    Outcome.CONFLICT: 409,
    Outcome.PAYLOAD_TOO_LARGE: 413,
    Outcome.UNSUPPORTED_ENCODING: 415,
    Outcome.REQUEST_TIMEOUT: 408,
    Outcome.HEADERS_TOO_LARGE: 431,
    Outcome.BAD_REQUEST: 400,
    Outcome.RATE_LIMITED: 429,
    Outcome.UNAVAILABLE: 503,
    Outcome.INTERNAL: 500,
}

_encoder = msgspec.json.Encoder()
JSON_TYPE = (b"content-type", b"application/json")


@dataclass(slots=True)
class Answer:
    """A whole HTTP answer: status, body and headers (the body's Content-Type included).

    Answers may be shared between requests (a 204, a 500): they are never changed once built.
    A body made while it is sent is a StreamedAnswer (http/streaming.py).
    """

    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def render_error(
    outcome: Outcome,
    message: str,
    details: Sequence[ErrorDetail] = (),
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> Answer:
    """The error body every refusal carries, with the outcome's status."""
    body = ErrorResponse(ErrorBody(str(outcome), message, list(details)))
    return Answer(STATUS[outcome], _encoder.encode(body), [JSON_TYPE, *headers])


def error_answer(error: IngestError) -> Answer:
    """Map any ingest error to its status, headers and JSON body."""
    headers: list[tuple[bytes, bytes]] = []
    if error.outcome is Outcome.UNAUTHORIZED:
        headers.append((b"www-authenticate", b'Bearer realm="thrad-events"'))
    if isinstance(error, RateLimited | Unavailable):
        headers.append((b"retry-after", str(error.retry_after_s).encode()))
    if isinstance(error, RateLimited):
        headers.append((b"ratelimit-limit", str(error.limit).encode()))
        headers.append((b"ratelimit-remaining", str(error.remaining).encode()))
        headers.append((b"ratelimit-reset", str(error.retry_after_s).encode()))
    if STATUS[error.outcome] >= 500:
        # The cause (storage down or slow) is logged once at error where it is detected; each
        # request it turns away is only a warning, so an outage does not flood the log.
        log.warning("request failed: %s: %s", error.outcome, error.message)
    else:
        log.debug("request rejected: %s: %s", error.outcome, error.message)
    details = [ErrorDetail(d.field, d.message) for d in error.details]
    return render_error(error.outcome, error.message, details, headers)


INTERNAL_ERROR = render_error(Outcome.INTERNAL, "internal error; retry with backoff")
