"""Body validation: every body problem of the contract's error table, and the pinned formats.

Contract, errors: not JSON / not an object / not UTF-8 -> 400 invalid_json; a required field
missing or null -> 400 missing_field; a wrong type or format -> 422 validation_error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from thrad_events.errors import IngestError, InvalidJson, MissingField, Outcome, ValidationFailed
from thrad_events.ingest.json_bounds import MAX_JSON_DEPTH, check_depth
from thrad_events.ingest.validate import (
    check_client_ip,
    convert_conversion,
    decode_collect,
    decode_object,
    normalize_currency,
    parse_conversion_time,
    truncate_timestamp,
    whole_view_time,
)
from thrad_events.schemas import ConversionRequest

COLLECT_STRING_FIELDS = (
    "event_name",
    "tag_id",
    "event_id",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "attribution_type",
    "impression_id",
    "click_id",
    "bid_id",
    "impression_state",
    "client_ip",
)
CONVERSION_STRING_FIELDS = (
    "click_id",
    "conversion_time",
    "currency",
    "event_type",
    "order_id",
    "event_id",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "tag_id",
    "client_ip",
)
NOT_STRINGS = (1, 1.5, True, {"a": 1}, ["a"])
SEED_CONVERSION: dict[str, Any] = {
    "click_id": "11111111-1111-4111-8111-111111111111",
    "conversion_time": "2026-02-19T18:00:00Z",
    "conversion_value": 49.99,
    "currency": "USD",
}


def _collect(**fields: Any) -> bytes:
    return json.dumps({"event_name": "page_view", **fields}).encode()


def _conversion_raw(body: bytes) -> ConversionRequest:
    return convert_conversion(decode_object(body))


def _conversion(**fields: Any) -> ConversionRequest:
    return _conversion_raw(json.dumps({**SEED_CONVERSION, **fields}).encode())


def _field_of(error: IngestError) -> str:
    [detail] = error.details
    return detail.field


# -- 400 invalid_json -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"event_name": "a"', b"{'event_name': 'a'}", b"NaN"],
    ids=["empty", "text", "truncated", "single-quotes", "nan"],
)
def test_collect_body_that_is_not_json_is_invalid_json(body: bytes) -> None:
    """Contract: body is not JSON -> 400 invalid_json."""
    with pytest.raises(InvalidJson):
        decode_collect(body)


@pytest.mark.parametrize("body", [b"[]", b'"page_view"', b"1", b"null", b"true"])
def test_collect_body_that_is_not_an_object_is_invalid_json(body: bytes) -> None:
    """Contract: body is not a JSON object -> 400 invalid_json."""
    with pytest.raises(InvalidJson):
        decode_collect(body)


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"null", b"not json"])
def test_conversion_body_that_is_not_a_json_object_is_invalid_json(body: bytes) -> None:
    """Contract: body is not JSON or not a JSON object -> 400 invalid_json (conversion)."""
    with pytest.raises(InvalidJson):
        decode_object(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_name": "caf\xe9"}',
        b'{"event_name": "a", "unknown": "\xff\xfe"}',
        b'{"event_name": "a", "params": {"k": "\xc3"}}',
    ],
    ids=["latin1-in-known-field", "in-unknown-field", "truncated-sequence"],
)
def test_collect_body_that_is_not_utf8_is_invalid_json(body: bytes) -> None:
    """Contract: body is not UTF-8 -> 400 invalid_json, also inside fields the server ignores."""
    with pytest.raises(InvalidJson):
        decode_collect(body)


def test_conversion_body_that_is_not_utf8_is_invalid_json() -> None:
    """Contract: body is not UTF-8 -> 400 invalid_json (conversion, in an unknown field)."""
    body = json.dumps(SEED_CONVERSION).encode()[:-1] + b', "tier": "\xff"}'
    with pytest.raises(InvalidJson):
        decode_object(body)


def test_invalid_json_maps_to_the_contract_code() -> None:
    """Contract: the error code of a non-JSON body is `invalid_json`."""
    with pytest.raises(InvalidJson) as caught:
        decode_collect(b"{")
    assert caught.value.outcome is Outcome.INVALID_JSON
    assert caught.value.outcome == "invalid_json"


# -- 400 missing_field ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{}", b'{"event_name": null}', b'{"tag_id": "t"}'])
def test_collect_without_event_name_is_missing_field(body: bytes) -> None:
    """Seed: event_name is the one required collect field; missing or null -> 400 missing_field."""
    with pytest.raises(MissingField) as caught:
        decode_collect(body)
    assert _field_of(caught.value) == "event_name"
    assert caught.value.outcome == "missing_field"


@pytest.mark.parametrize("field", ["click_id", "conversion_time", "conversion_value", "currency"])
@pytest.mark.parametrize("how", ["omitted", "null"])
def test_conversion_without_a_required_field_is_missing_field(field: str, how: str) -> None:
    """Seed: click_id, conversion_time, conversion_value, currency are required;
    contract: missing (or null) -> 400 missing_field naming the field."""
    body = dict(SEED_CONVERSION)
    if how == "omitted":
        del body[field]
    else:
        body[field] = None
    with pytest.raises(MissingField) as caught:
        _conversion_raw(json.dumps(body).encode())
    assert _field_of(caught.value) == field


def test_null_optional_field_means_omitted() -> None:
    """Contract: `null` for an optional field means the field was omitted."""
    request = decode_collect(_collect(tag_id=None, timestamp=None, params=None, page_url=None))
    assert request.tag_id is None
    assert request.timestamp is None
    assert request.params is None


def test_null_optional_conversion_field_means_omitted() -> None:
    """Contract: `null` for an optional field means the field was omitted (conversion)."""
    request = _conversion(order_id=None, event_type=None, channel=None)
    assert request.order_id is None
    assert request.event_type is None


# -- 422 validation_error: types --------------------------------------------------------------


@pytest.mark.parametrize("field", COLLECT_STRING_FIELDS)
@pytest.mark.parametrize("value", NOT_STRINGS, ids=["int", "float", "bool", "object", "array"])
def test_collect_string_field_of_another_type_is_422_naming_it(field: str, value: Any) -> None:
    """Contract: a string field given a number, bool, object or array is a 422."""
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(**{field: value}))
    assert _field_of(caught.value) == field
    assert caught.value.outcome == "validation_error"


@pytest.mark.parametrize("field", CONVERSION_STRING_FIELDS)
@pytest.mark.parametrize("value", NOT_STRINGS, ids=["int", "float", "bool", "object", "array"])
def test_conversion_string_field_of_another_type_is_422_naming_it(field: str, value: Any) -> None:
    """Contract: a string field given a number, bool, object or array is a 422 (conversion)."""
    with pytest.raises(ValidationFailed) as caught:
        _conversion(**{field: value})
    assert _field_of(caught.value) == field


@pytest.mark.parametrize("field", ["consent", "params"])
@pytest.mark.parametrize("value", ["x", 1, True, ["a"]], ids=["str", "int", "bool", "array"])
def test_consent_and_params_must_be_objects(field: str, value: Any) -> None:
    """Contract: `consent` and `params` are objects; anything else is a 422 naming the field."""
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(**{field: value}))
    assert _field_of(caught.value) == field
    with pytest.raises(ValidationFailed) as caught:
        _conversion(**{field: value})
    assert _field_of(caught.value) == field


@pytest.mark.parametrize("value", ["1771879200", True, False, {"s": 1}, [1]])
def test_timestamp_must_be_a_json_number(value: Any) -> None:
    """Contract: `timestamp` is a JSON number; a string or a bool is a 422 naming it."""
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(timestamp=value))
    assert _field_of(caught.value) == "timestamp"


def test_timestamp_float_is_truncated_to_seconds() -> None:
    """Contract: a float `timestamp` is truncated to seconds."""
    request = decode_collect(_collect(timestamp=1771879200.987))
    assert truncate_timestamp(request.timestamp, default=0) == 1771879200


def test_timestamp_integer_is_kept() -> None:
    """Seed: timestamp is Unix seconds; an integer is stored as sent."""
    request = decode_collect(_collect(timestamp=1771879200))
    assert truncate_timestamp(request.timestamp, default=0) == 1771879200


def test_timestamp_omitted_defaults_to_receive_time() -> None:
    """Events API: timestamp 'Defaults to server receive time'."""
    assert truncate_timestamp(None, default=1748275200) == 1748275200


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_timestamp_is_422(value: float) -> None:
    """Contract: a wrong format is a 422; a non-finite timestamp has no second to truncate to."""
    with pytest.raises(ValidationFailed) as caught:
        truncate_timestamp(value, default=0)
    assert _field_of(caught.value) == "timestamp"


def test_timestamp_beyond_any_float_is_422() -> None:
    """A timestamp like 1e400 (infinite as a float) is a 422 naming timestamp, not a 500."""
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(b'{"event_name": "a", "timestamp": 1e400}')
    assert _field_of(caught.value) == "timestamp"


@pytest.mark.parametrize("value", ["100", True, {"ms": 1}])
def test_view_time_ms_must_be_a_number(value: Any) -> None:
    """Contract: `view_time_ms` is a JSON number (a whole one); anything else is a 422."""
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(view_time_ms=value))
    assert _field_of(caught.value) == "view_time_ms"


# -- conversion_value -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["49.99", True, {"v": 1}, [49.99]])
def test_conversion_value_that_is_not_a_number_is_422(value: Any) -> None:
    """Contract: `conversion_value` is a finite JSON number (a string is a 422)."""
    with pytest.raises(ValidationFailed) as caught:
        _conversion(conversion_value=value)
    assert _field_of(caught.value) == "conversion_value"


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_non_finite_conversion_value_is_422(value: Decimal) -> None:
    """Contract: `conversion_value` is a *finite* JSON number."""
    with pytest.raises(ValidationFailed) as caught:
        convert_conversion({**SEED_CONVERSION, "conversion_value": value})
    assert _field_of(caught.value) == "conversion_value"


def test_conversion_value_too_large_for_money_is_422() -> None:
    """1e400 parses as a (finite) decimal but is no amount of money: a 422, not a 500."""
    body = json.dumps(SEED_CONVERSION).replace("49.99", "1e400").encode()
    with pytest.raises(ValidationFailed) as caught:
        _conversion_raw(body)
    assert _field_of(caught.value) == "conversion_value"


@pytest.mark.parametrize(
    ("text", "digits"),
    [("49.99", "49.99"), ("10", "10"), ("0.10", "0.10"), ("1234567890.123456789", None)],
)
def test_conversion_value_is_an_exact_decimal_with_the_digits_sent(
    text: str, digits: str | None
) -> None:
    """Contract: money is exact, stored as a decimal, never a binary float ('49.99' -> '49.99')."""
    body = json.dumps(SEED_CONVERSION).replace("49.99", text).encode()
    request = _conversion_raw(body)
    assert isinstance(request.conversion_value, Decimal)
    assert str(request.conversion_value) == (digits or text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1e-300000000", "12 digits after the decimal point"),
        ("0.1234567890123", "12 digits after the decimal point"),
        ("1e2000000", "below 1e15"),
        ("-1e15", "below 1e15"),
    ],
)
def test_conversion_value_out_of_money_bounds_is_422(text: str, problem: str) -> None:
    """|value| < 10^15 with at most 12 digits after the point; the probe's 1e2000000 was a 500
    (decimal.Overflow from abs())."""
    body = json.dumps(SEED_CONVERSION).replace("49.99", text).encode()
    with pytest.raises(ValidationFailed) as caught:
        _conversion_raw(body)
    assert _field_of(caught.value) == "conversion_value"
    assert problem in caught.value.details[0].message


@pytest.mark.parametrize(
    ("members", "field"),
    [
        ('"params": {"a": {"b": [0, 1e309]}}', "params.a.b[1]"),
        ('"consent": {"v": 1e-341}', "consent.v"),
        ('"customer_score": -1e2000000', "customer_score"),
        ('"customer_score": ' + "9" * 4301, "customer_score"),
    ],
)
def test_a_number_out_of_range_anywhere_in_a_conversion_is_422_naming_its_path(
    members: str, field: str
) -> None:
    body = json.dumps(SEED_CONVERSION)[:-1] + ", " + members + "}"
    with pytest.raises(ValidationFailed) as caught:
        _conversion_raw(body.encode())
    assert _field_of(caught.value) == field


def test_numbers_a_double_holds_are_kept_exactly_in_a_conversion() -> None:
    members = '"params": {"a": 1.7976931348623157e308, "b": 5e-324, "c": ' + "9" * 4300 + "}"
    body = json.dumps(SEED_CONVERSION)[:-1] + ", " + members + "}"
    request = _conversion_raw(body.encode())
    assert request.params is not None
    assert request.params["a"] == Decimal("1.7976931348623157e308")
    assert request.params["b"] == Decimal("5e-324")
    assert request.params["c"] == int("9" * 4300)


# -- currency ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["USD", "usd", "Usd", "eur"])
def test_currency_is_case_insensitive_and_normalised_upper_case(text: str) -> None:
    """Contract: currency is ISO 4217, case-insensitive on input, stored upper-case."""
    assert normalize_currency(text) == text.upper()


@pytest.mark.parametrize("text", ["ABC", "QQQ", "US$", "DOL"])
def test_unknown_currency_code_is_422(text: str) -> None:
    """Contract: currency must be an ISO 4217 code."""
    with pytest.raises(ValidationFailed) as caught:
        normalize_currency(text)
    assert _field_of(caught.value) == "currency"


@pytest.mark.parametrize("text", ["US", "USDD", ""])
def test_currency_of_the_wrong_length_is_422(text: str) -> None:
    """Seed: currency is a 3-letter ISO currency code."""
    with pytest.raises(ValidationFailed) as caught:
        _conversion(currency=text)
    assert _field_of(caught.value) == "currency"


# -- conversion_time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-19T18:00:00Z", datetime(2026, 2, 19, 18, tzinfo=UTC)),
        ("2026-02-19T18:00:00z", datetime(2026, 2, 19, 18, tzinfo=UTC)),
        ("2026-02-19T18:00:00+00:00", datetime(2026, 2, 19, 18, tzinfo=UTC)),
        ("2026-02-19T20:00:00+02:00", datetime(2026, 2, 19, 18, tzinfo=UTC)),
        ("2026-02-19T13:00:00-05:00", datetime(2026, 2, 19, 18, tzinfo=UTC)),
        ("2026-02-19T23:30:00+05:30", datetime(2026, 2, 19, 18, tzinfo=UTC)),
        ("2026-02-19T18:00:00.250Z", datetime(2026, 2, 19, 18, 0, 0, 250000, tzinfo=UTC)),
        ("2026-02-19T18:00", datetime(2026, 2, 19, 18, tzinfo=UTC)),
    ],
)
def test_conversion_time_with_an_offset_is_converted_to_utc(text: str, expected: datetime) -> None:
    """Contract: conversion_time is ISO-8601 with a date and time, stored in UTC."""
    moment = parse_conversion_time(text)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0)


def test_conversion_time_without_an_offset_is_utc() -> None:
    """Contract: without an offset conversion_time is UTC (not the server's local zone)."""
    moment = parse_conversion_time("2026-02-19T18:00:00")
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)
    assert moment.replace(tzinfo=None) == datetime(2026, 2, 19, 18)
    assert moment != datetime(2026, 2, 19, 18, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize(
    "text",
    ["2026-02-19", "18:00:00", "yesterday", "", "2026-02-19T25:00:00Z", "2026-13-01T00:00:00Z"],
    ids=["date-only", "time-only", "word", "empty", "bad-hour", "bad-month"],
)
def test_conversion_time_without_a_date_and_a_time_is_422(text: str) -> None:
    """Contract: conversion_time must be ISO-8601 with a date *and* a time (date-only -> 422)."""
    with pytest.raises(ValidationFailed) as caught:
        parse_conversion_time(text)
    assert _field_of(caught.value) == "conversion_time"


def test_conversion_time_with_a_nul_is_422() -> None:
    """A conversion_time hiding text after a NUL is refused, not half-read."""
    with pytest.raises(ValidationFailed):
        parse_conversion_time("2026-02-19T18:00:00\x00junk")


# -- client_ip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        # An IPv4-mapped address is the IPv4 address (it was kept mapped, and so got no geo).
        ("::ffff:81.2.69.142", "81.2.69.142"),
        ("::FFFF:5102:458e", "81.2.69.142"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_client_ip_valid_address_is_kept_normalised(text: str, expected: str) -> None:
    """Contract: client_ip is an optional IPv4 or IPv6 address string."""
    assert check_client_ip(text) == expected


def test_client_ip_omitted_is_none() -> None:
    """Contract: client_ip is optional."""
    assert check_client_ip(None) is None


@pytest.mark.parametrize(
    "text", ["not-an-ip", "256.1.1.1", "203.0.113.7:8080", "", "example.com", "1.2.3"]
)
def test_client_ip_that_is_not_an_address_is_422(text: str) -> None:
    """Contract: client_ip anything but an IPv4 or IPv6 address is a 422."""
    with pytest.raises(ValidationFailed) as caught:
        check_client_ip(text)
    assert _field_of(caught.value) == "client_ip"


@pytest.mark.parametrize(("value", "expected"), [(None, None), (1007, 1007), (1007.0, 1007)])
def test_view_time_ms_takes_a_float_without_a_fraction(
    value: int | float | None, expected: int | None
) -> None:
    request = decode_collect(_collect(view_time_ms=value))
    assert whole_view_time(request.view_time_ms) == expected


def test_view_time_ms_with_a_fraction_is_422() -> None:
    request = decode_collect(_collect(view_time_ms=1007.5))
    with pytest.raises(ValidationFailed) as caught:
        whole_view_time(request.view_time_ms)
    assert _field_of(caught.value) == "view_time_ms"


# -- depth ------------------------------------------------------------------------------------


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def test_params_nested_within_the_limit_are_accepted() -> None:
    """Seed: params is a free-form object; reasonable nesting is stored as sent."""
    check_depth(_nested(MAX_JSON_DEPTH), "params")


def test_params_nested_too_deep_is_422_naming_the_field() -> None:
    """A params object nested deeper than the limit is a 422 naming params, not a crash."""
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(params=_nested(MAX_JSON_DEPTH + 2)))
    assert _field_of(caught.value) == "params"


def test_collect_depth_limit_is_exact_in_a_whole_body() -> None:
    """The limit holds in a decoded body, whatever shortcut the decoder takes for flat ones."""
    decode_collect(_collect(params=_nested(MAX_JSON_DEPTH)))
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(params=_nested(MAX_JSON_DEPTH + 1)))
    assert _field_of(caught.value) == "params"
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(_collect(consent={"a": _nested(MAX_JSON_DEPTH)}))
    assert _field_of(caught.value) == "consent"


def test_body_nested_beyond_the_decoder_is_a_clear_error() -> None:
    """A body nested thousands deep gets a 4xx error naming the field, not a RecursionError."""
    body = b'{"event_name": "a", "consent": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(ValidationFailed) as caught:
        decode_collect(body)
    assert _field_of(caught.value) == "consent"


# -- the seeds' examples ----------------------------------------------------------------------


def test_seed_collect_example_is_valid() -> None:
    """Seed (S2S Collect API): the documented example request validates."""
    request = decode_collect(
        json.dumps(
            {
                "tag_id": "adv_001",
                "event_name": "page_view",
                "event_id": "pv-order-123-step-1",
                "timestamp": 1771879200,
                "page_url": "https://shop.example.com/checkout",
                "params": {"step": "shipping"},
            }
        ).encode()
    )
    assert request.event_name == "page_view"
    assert request.params == {"step": "shipping"}


def test_seed_conversion_example_is_valid_and_keeps_unknown_fields_raw() -> None:
    """Seed (S2S Conversion API): the example validates; customer_tier is not a known field."""
    raw = decode_object(
        json.dumps(
            {
                **SEED_CONVERSION,
                "order_id": "order-123",
                "event_type": "purchase_completed",
                "customer_tier": "gold",
            }
        ).encode()
    )
    request = convert_conversion(raw)
    assert request.order_id == "order-123"
    assert request.conversion_value == Decimal("49.99")
    assert raw["customer_tier"] == "gold"


@pytest.mark.parametrize("name", ["items_added", "my_own_event", "Lead Created!", "x"])
def test_any_event_name_is_accepted(name: str) -> None:
    """Contract: any other name is accepted as a custom event: never reject on the name."""
    assert decode_collect(_collect(event_name=name)).event_name == name
