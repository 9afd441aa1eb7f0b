"""client/wire.py and client/errors.py: exact JSON, and one exception per server error code."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from thrad_events.client import (
    AuthenticationError,
    ClickNotFoundError,
    InvalidRequestError,
    PayloadTooLargeError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ValidationError,
)
from thrad_events.client.errors import APIError, error_for_code, error_from_response
from thrad_events.client.wire import dumps


def test_decimals_keep_their_digits_anywhere_in_the_body() -> None:
    body = {
        "v": Decimal("49.990"),
        "params": {"value": Decimal("58.00"), "list": [Decimal("0E-7")]},
    }
    assert dumps(body) == b'{"v":49.990,"params":{"value":58.00,"list":[0E-7]}}'
    assert json.loads(dumps(body), parse_float=Decimal)["v"] == Decimal("49.990")


def test_the_rest_of_json_is_plain_json() -> None:
    body = {"s": 'é "q"\n', "i": 3, "f": 0.5, "t": True, "n": None, "l": (1, "x")}
    assert json.loads(dumps(body)) == {
        "s": 'é "q"\n',
        "i": 3,
        "f": 0.5,
        "t": True,
        "n": None,
        "l": [1, "x"],
    }


def test_a_datetime_anywhere_is_sent_as_utc_iso_8601() -> None:
    assert dumps({"at": datetime(2026, 2, 19, 18, 0)}) == b'{"at":"2026-02-19T18:00:00Z"}'


@pytest.mark.parametrize(
    "value", [float("nan"), float("-inf"), Decimal("Infinity"), Decimal("sNaN")]
)
def test_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="finite"):
        dumps({"v": value})


@pytest.mark.parametrize("value", [{1: "x"}, {"v": object()}, {"v": {1, 2}}])
def test_what_json_cannot_hold_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        dumps(value)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "invalid_json", InvalidRequestError),
        (400, "missing_field", InvalidRequestError),
        (401, "unauthorized", AuthenticationError),
        (404, "click_not_found", ClickNotFoundError),
        (408, "request_timeout", RequestTimeoutError),
        (413, "payload_too_large", PayloadTooLargeError),
        (422, "validation_error", ValidationError),
        (429, "rate_limited", RateLimitError),
        (503, "unavailable", ServerError),
        (500, "internal", ServerError),
        (504, None, ServerError),
        (415, "unsupported_encoding", APIError),
    ],
)
def test_contract_error_table_maps_to_exception_classes(
    status: int, code: str | None, error: type[Exception]
) -> None:
    body = {"error": {"code": code, "message": "m", "details": []}} if code else None
    response = httpx.Response(status, json=body, headers={"X-Request-ID": "abc"})
    mapped = error_from_response(response)
    assert type(mapped) is error
    assert (mapped.status, mapped.code, mapped.request_id) == (status, code, "abc")


def test_without_x_request_id_the_request_id_is_none() -> None:
    assert error_from_response(httpx.Response(401)).request_id is None


def test_a_batch_items_code_gives_the_single_calls_exception() -> None:
    error = error_for_code("click_not_found", "no click")
    assert isinstance(error, ClickNotFoundError)
    assert error.status == 404
    assert isinstance(error_for_code("something_new", "?"), APIError)


def test_error_text_names_status_code_and_request_id() -> None:
    error = error_from_response(
        httpx.Response(
            422,
            json={"error": {"code": "validation_error", "message": "currency: bad", "details": []}},
            headers={"X-Request-ID": "r-1"},
        )
    )
    assert str(error) == "currency: bad (status 422, code validation_error, request id r-1)"
