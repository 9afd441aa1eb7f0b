"""The one place where a rejection becomes an HTTP answer: status, headers, JSON body."""

from __future__ import annotations

import logging

import msgspec
from starlette.responses import Response

from thrad_events.errors import IngestError, Outcome, RateLimited, Unavailable
from thrad_events.schemas import ErrorBody, ErrorDetail, ErrorResponse

log = logging.getLogger("thrad_events.http")

STATUS = {
    Outcome.INVALID_JSON: 400,
    Outcome.MISSING_FIELD: 400,
    Outcome.BAD_CLICK_LINK: 400,
    Outcome.VALIDATION_ERROR: 422,
    Outcome.UNAUTHORIZED: 401,
    Outcome.CLICK_NOT_FOUND: 404,
    Outcome.NOT_FOUND: 404,
    Outcome.METHOD_NOT_ALLOWED: 405,
    Outcome.PAYLOAD_TOO_LARGE: 413,
    Outcome.UNSUPPORTED_ENCODING: 415,
    Outcome.REQUEST_TIMEOUT: 408,
    Outcome.RATE_LIMITED: 429,
    Outcome.UNAVAILABLE: 503,
    Outcome.INTERNAL: 500,
}

_encoder = msgspec.json.Encoder()


def error_response(
    outcome: Outcome,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = ErrorResponse(ErrorBody(str(outcome), message, details or []))
    return Response(
        _encoder.encode(body),
        status_code=STATUS[outcome],
        media_type="application/json",
        headers=headers,
    )


def response_for(error: IngestError) -> Response:
    """Map any ingest error to its status, headers and JSON body."""
    headers: dict[str, str] = {}
    if error.outcome is Outcome.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="thrad-events"'
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, RateLimited):
        headers["RateLimit-Limit"] = str(error.limit)
        headers["RateLimit-Remaining"] = str(error.remaining)
        headers["RateLimit-Reset"] = str(error.retry_after_s)
    status = STATUS[error.outcome]
    if status >= 500:
        # The cause (storage down or slow) is logged once at error where it is detected; each
        # request it turns away is only a warning, so an outage does not flood the log.
        log.warning("request failed: %s: %s", error.outcome, error.message)
    else:
        log.debug("request rejected: %s: %s", error.outcome, error.message)
    details = [ErrorDetail(d.field, d.message) for d in error.details]
    return error_response(error.outcome, error.message, details, headers)
