"""http/errors.py: every refusal is one JSON shape with its status and the headers it promises."""

from __future__ import annotations

import json

import pytest

from thrad_events.errors import (
    BadClickLink,
    BadRequest,
    ClickNotFound,
    FieldProblem,
    Forbidden,
    HeadersTooLarge,
    IngestError,
    InvalidJson,
    MissingField,
    Outcome,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unauthorized,
    Unavailable,
    UnsupportedEncoding,
    ValidationFailed,
)
from thrad_events.http.errors import INTERNAL_ERROR, STATUS, error_answer, render_error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidJson("body is not valid JSON"), 400),
        (MissingField("event_name: required", (FieldProblem("event_name", "required"),)), 400),
        (BadClickLink("click link is not signed"), 400),
        (BadRequest("malformed HTTP request"), 400),
        (ValidationFailed("currency: bad", (FieldProblem("currency", "bad"),)), 422),
        (Unauthorized("missing API key"), 401),
        (Forbidden("partner_id: not yours"), 403),
        (ClickNotFound("click_id unknown"), 404),
        (PayloadTooLarge("body is larger than 10 bytes"), 413),
        (UnsupportedEncoding("br is not supported"), 415),
        (RequestTimeout("body not received within 10 s"), 408),
        (HeadersTooLarge("head too large"), 431),
        (RateLimited("over the limit", retry_after_s=2, limit=5), 429),
        (Unavailable("storage is slow", retry_after_s=1), 503),
    ],
)
def test_each_error_has_its_status_and_the_one_json_shape(error: IngestError, status: int) -> None:
    answer = error_answer(error)
    assert answer.status == status
    assert (b"content-type", b"application/json") in answer.headers
    assert json.loads(answer.body) == {
        "error": {
            "code": str(error.outcome),
            "message": error.message,
            "details": [{"field": d.field, "message": d.message} for d in error.details],
        }
    }


def test_401_names_the_bearer_scheme() -> None:
    headers = dict(error_answer(Unauthorized("revoked key")).headers)
    assert headers[b"www-authenticate"] == b'Bearer realm="thrad-events"'


def test_429_carries_retry_after_and_the_ratelimit_fields() -> None:
    answer = error_answer(RateLimited("over", retry_after_s=3, limit=50, remaining=0))
    headers = dict(answer.headers)
    assert headers[b"retry-after"] == b"3"
    assert headers[b"ratelimit-limit"] == b"50"
    assert headers[b"ratelimit-remaining"] == b"0"
    assert headers[b"ratelimit-reset"] == b"3"


def test_503_carries_retry_after_and_is_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("DEBUG", logger="thrad_events.http"):
        answer = error_answer(Unavailable("write queue is full", retry_after_s=1))
        error_answer(InvalidJson("not JSON"))
    assert dict(answer.headers)[b"retry-after"] == b"1"
    assert [record.levelname for record in caplog.records] == ["WARNING", "DEBUG"]


def test_a_refusal_without_an_error_class_has_the_same_shape_and_its_extra_headers() -> None:
    answer = render_error(
        Outcome.METHOD_NOT_ALLOWED, "method not allowed", headers=[(b"allow", b"POST")]
    )
    assert answer.status == 405
    assert answer.headers == [(b"content-type", b"application/json"), (b"allow", b"POST")]
    assert json.loads(answer.body)["error"] == {
        "code": "method_not_allowed",
        "message": "method not allowed",
        "details": [],
    }


def test_an_internal_error_says_to_retry_and_shows_no_trace() -> None:
    assert INTERNAL_ERROR.status == 500
    assert json.loads(INTERNAL_ERROR.body)["error"]["code"] == "internal"
    assert b"Traceback" not in INTERNAL_ERROR.body


def test_every_outcome_that_refuses_has_a_status() -> None:
    answered = {
        Outcome.STORED,
        Outcome.PREVIEWED,
        Outcome.DUPLICATE,
        Outcome.SERVED,
        Outcome.VALIDATED,
    }
    assert set(STATUS) == set(Outcome) - answered
