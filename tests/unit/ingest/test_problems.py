"""The error of a refused body lists every problem in it, in plain words.

Contract: `details` lists every problem found in the body, not only the first: each missing
required field and each field with a wrong type or format, `field` as a dotted path, `message`
in plain words (no parser jargon; a millisecond `timestamp` says that it looks like
milliseconds). A missing required field makes it a 400 missing_field, else a 422.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.keys import api_key
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.errors import IngestError, InvalidJson, MissingField, ValidationFailed
from thrad_events.ingest import validate
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.ingest.problems import Problems, check_fields
from thrad_events.schemas import CollectRequest, ConversionRequest, TagCreateRequest
from thrad_events.store.base import Store

SEED_CONVERSION: dict[str, Any] = {
    "click_id": "11111111-1111-4111-8111-111111111111",
    "conversion_time": "2026-02-19T18:00:00Z",
    "conversion_value": 49.99,
    "currency": "USD",
}
# What msgspec's own messages are made of; none of it may reach a client.
JARGON = ("`", "Expected", "got ", "$.", "$[", "[...]", "str |", "| null")
KEY = api_key()
CONTEXT = RequestContext(peer_ip="127.0.0.1", received_at=datetime(2026, 2, 19, tzinfo=UTC))
INGESTOR = Ingestor(
    cast(Store, None), proxies=TrustedProxies(()), click_secret="s" * 32, click_ttl_s=60
)


def _collect_error(**fields: Any) -> IngestError:
    with pytest.raises(IngestError) as caught:
        INGESTOR.event_row(json.dumps(fields).encode(), KEY, CONTEXT)
    return caught.value


def _conversion_error(body: bytes) -> IngestError:
    with pytest.raises(IngestError) as caught:
        INGESTOR.conversion_row(body, KEY, CONTEXT)
    return caught.value


def _details(error: IngestError) -> dict[str, str]:
    return {detail.field: detail.message for detail in error.details}


def test_every_wrong_field_of_a_collect_body_is_listed_in_the_struct_order() -> None:
    error = _collect_error(
        event_name=5,
        tag_id=["t"],
        event_id="",
        page_url="x" * 8193,
        view_time_ms=-1,
        consent="yes",
        params=[1],
    )
    assert isinstance(error, ValidationFailed)
    assert _details(error) == {
        "event_name": "must be a string",
        "tag_id": "must be a string",
        "event_id": "must not be empty",
        "page_url": "must be at most 8192 characters",
        "view_time_ms": "must be from 0 to 9007199254740992 milliseconds",
        "consent": "must be an object",
        "params": "must be an object",
    }
    assert error.message == "event_name: must be a string (and 6 more problems)"


def test_a_missing_required_field_makes_it_400_and_the_type_problems_are_listed_too() -> None:
    error = _collect_error(tag_id=1, timestamp="1771879200")
    assert isinstance(error, MissingField)
    assert error.outcome == "missing_field"
    assert [(d.field, d.message) for d in error.details] == [
        ("event_name", "required field is missing"),
        ("tag_id", "must be a string"),
        ("timestamp", "must be a number of seconds (Unix time)"),
    ]
    assert error.message == "event_name: required field is missing (and 2 more problems)"


def test_format_problems_found_after_the_decode_are_listed_with_the_type_problems() -> None:
    """client_ip and view_time_ms are checked once the Struct is decoded; a refusal there
    still lists every other problem of the body."""
    error = _collect_error(event_name="a", client_ip="not-an-ip", view_time_ms=1.5)
    assert _details(error) == {
        "view_time_ms": "must be a whole number of milliseconds",
        "client_ip": "must be an IPv4 or IPv6 address",
    }


@pytest.mark.parametrize("value", [1771879200000, 1771879200000.5, 253402300799000])
def test_a_timestamp_in_milliseconds_is_refused_and_said_to_look_like_milliseconds(
    value: float,
) -> None:
    """Refused as before (it is over the year 9999 in seconds); the message says why."""
    [detail] = _collect_error(event_name="a", timestamp=value).details
    assert detail.field == "timestamp"
    assert detail.message.startswith("looks like milliseconds: must be Unix time in seconds")


def test_a_timestamp_too_large_even_for_milliseconds_says_the_range() -> None:
    [detail] = _collect_error(event_name="a", timestamp=10**30).details
    assert detail.message == "must be from 0 to 253402300799 seconds (Unix time)"


def test_a_number_beyond_a_double_is_refused_in_the_fields_own_words() -> None:
    body = b'{"event_name": 1e400, "timestamp": -' + b"9" * 4301 + b', "params": {"a": 1e400}}'
    with pytest.raises(ValidationFailed) as caught:
        validate.decode_collect(body)
    details = _details(caught.value)
    assert details["event_name"] == "must be a string"
    assert details["timestamp"] == "must be from 0 to 253402300799 seconds (Unix time)"
    assert details["params"].startswith("number out of range")


def test_every_problem_of_a_conversion_is_listed_formats_included() -> None:
    body = {
        **SEED_CONVERSION,
        "click_id": 7,
        "conversion_time": "2026-02-19",
        "conversion_value": 1e20,
        "currency": "ABC",
        "client_ip": "300.1.1.1",
        "consent": ["granted"],
        "params": "x",
    }
    error = _conversion_error(json.dumps(body).encode())
    assert isinstance(error, ValidationFailed)
    assert _details(error) == {
        "click_id": "must be a string",
        "conversion_time": "must be an ISO-8601 date and time",
        "conversion_value": "must be below 1e15 in magnitude",
        "currency": "'ABC' is not an ISO 4217 code",
        "consent": "must be an object",
        "params": "must be an object",
        "client_ip": "must be an IPv4 or IPv6 address",
    }


def test_a_conversion_missing_fields_and_with_wrong_ones_is_400_listing_all() -> None:
    body = {"click_id": "c", "conversion_value": "49.99", "currency": "US", "order_id": 5}
    error = _conversion_error(json.dumps(body).encode())
    assert isinstance(error, MissingField)
    assert [(d.field, d.message) for d in error.details] == [
        ("conversion_time", "required field is missing"),
        ("conversion_value", "must be a number"),
        ("currency", "must be exactly 3 characters"),
        ("order_id", "must be a string"),
    ]


def test_unreadable_numbers_in_a_conversion_are_named_with_the_other_problems() -> None:
    huge = "9" * 4301
    body = f'{{"click_id": "c", "conversion_value": {huge}, "tier": {huge}, "deep": [{huge}]}}'
    error = _conversion_error(body.encode())
    assert isinstance(error, MissingField)
    details = _details(error)
    assert details["conversion_time"] == details["currency"] == "required field is missing"
    assert details["conversion_value"] == "must be below 1e15 in magnitude"
    assert details["tier"].startswith("number out of range")
    assert details["deep"].startswith("number out of range")


@pytest.mark.parametrize(
    ("body", "code", "field", "message"),
    [
        (b"{}", MissingField, "events", "required: a JSON array of events"),
        (b'{"events": null}', MissingField, "events", "required: a JSON array of events"),
        (b'{"events": "x"}', ValidationFailed, "events", "must be a JSON array of events"),
        (b'{"events": {"a": 1}}', ValidationFailed, "events", "must be a JSON array of events"),
    ],
)
def test_a_batch_without_its_array_names_it(
    body: bytes, code: type[IngestError], field: str, message: str
) -> None:
    with pytest.raises(code) as caught:
        validate.decode_batch(body, "events")
    assert _details(caught.value) == {field: message}


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"null", b"true"])
def test_a_body_that_is_no_object_says_what_it_is(body: bytes) -> None:
    for decode in (validate.decode_collect, validate.decode_object):
        with pytest.raises(InvalidJson) as caught:
            decode(body)
        assert caught.value.message.startswith("body must be a JSON object, not ")
    with pytest.raises(InvalidJson):
        validate.decode_batch(body, "conversions")


BAD_COLLECT_BODIES = [
    {"event_name": None, "tag_id": 1.5, "timestamp": True, "view_time_ms": "1"},
    {"event_name": "", "session_id": "", "click_id": "c" * 300, "user_agent": "u" * 3000},
    {"event_name": ["a"], "timestamp": -5, "view_time_ms": 2.0**60, "client_ip": 7},
    {"event_name": {"a": 1}, "consent": 1, "params": True, "impression_state": {}},
]


@pytest.mark.parametrize("body", BAD_COLLECT_BODIES)
def test_no_message_carries_parser_jargon(body: dict[str, Any]) -> None:
    error = _collect_error(**body)
    conversion = _conversion_error(json.dumps({**body, "conversion_value": [1]}).encode())
    for refused in (error, conversion):
        assert len(refused.details) > 1
        for text in (refused.message, *(d.message for d in refused.details)):
            assert not [word for word in JARGON if word in text], text


# -- the listing agrees with the fast path -----------------------------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**13), 10**16)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.text(min_size=250, max_size=260)
    | st.sampled_from(["2026-02-19T18:00:00Z", "usd", "203.0.113.7", "", "1.5"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)


@FUZZ
@given(st.sampled_from(CollectRequest.__struct_fields__), values)
def test_a_collect_field_is_listed_exactly_when_the_fast_path_refuses_it(
    field: str, value: Any
) -> None:
    body = json.dumps({"event_name": "a", field: value}).encode()
    refused: IngestError | None = None
    try:
        INGESTOR.event_row(body, KEY, CONTEXT)
    except IngestError as error:
        refused = error
    if refused is None:
        assert not validate.collect_error(body).details
    else:
        assert [d.field for d in refused.details] == [field]


@FUZZ
@given(st.sampled_from(ConversionRequest.__struct_fields__), values)
def test_a_conversion_field_is_listed_exactly_when_the_fast_path_refuses_it(
    field: str, value: Any
) -> None:
    body = json.dumps({**SEED_CONVERSION, field: value}).encode()
    refused: IngestError | None = None
    try:
        INGESTOR.conversion_row(body, KEY, CONTEXT)
    except IngestError as error:
        refused = error
    if refused is None:
        assert not validate.conversion_error(validate.decode_object(body)).details
    else:
        assert [d.field for d in refused.details] == [field]


# -- list fields (the Tag registry's origins): bounds, and each item by its place ----------------


def _problems_of(values: dict[str, Any]) -> dict[str, str]:
    problems = Problems()
    check_fields(TagCreateRequest, values, problems, {})
    return {p.field: p.message for p in (*problems.missing, *problems.invalid)}


def test_a_list_field_is_checked_for_its_bounds_and_each_item_by_its_place() -> None:
    base = {"partner": "acme", "tag_id": "t"}
    assert _problems_of({**base, "origins": ["https://a.example"]}) == {}
    assert _problems_of({**base, "origins": []}) == {"origins": "must not be empty"}
    assert _problems_of({**base, "origins": ["https://a.example"] * 51}) == {
        "origins": "must have at most 50 items"
    }
    assert _problems_of({**base, "origins": ["ok", 7, None, "x" * 301]}) == {
        "origins[1]": "must be a string",
        "origins[2]": "must not be null",
        "origins[3]": "must be at most 300 characters",
    }
    assert _problems_of({**base, "origins": "https://a.example"}) == {"origins": "must be an array"}
