"""Property tests of the validators, the pipeline's row building and tag derivation.

Whatever a client sends, validation ends in a request Struct or one of the contract's errors
(an IngestError, which http/errors.py maps to a 4xx), never another exception (a 500). The
budgets are small and derandomized: the same examples run on every machine.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.unit.keys import api_key
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.errors import IngestError, ValidationFailed
from thrad_events.ingest import json_bounds, validate
from thrad_events.ingest.normalize import (
    EXTRA_MAX_DEPTH,
    EXTRA_MAX_ITEMS,
    EXTRA_MAX_KEY_CHARS,
    EXTRA_MAX_KEYS,
    EXTRA_MAX_STRING_CHARS,
    derive_tag_id,
    sanitize_extra,
)
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.money import plain_text
from thrad_events.schemas import CollectRequest, ConversionRequest
from thrad_events.store.base import Store

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEY = api_key()
CONTEXT = RequestContext(peer_ip="127.0.0.1", received_at=datetime(2026, 2, 19, tzinfo=UTC))
# Building a row does no I/O: the store is never touched.
INGESTOR = Ingestor(
    cast(Store, None), proxies=TrustedProxies(()), click_secret="s" * 32, click_ttl_s=60
)

# -- strategies --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


def _nested(value: Any, levels: int, kind: str) -> Any:
    for _ in range(levels):
        value = [value] if kind == "list" else {"k": value}
    return value


deep_values = st.builds(
    _nested,
    json_values,
    st.integers(0, 2 * json_bounds.MAX_JSON_DEPTH),
    st.sampled_from(["list", "dict"]),
)

COLLECT_FIELDS = list(CollectRequest.__struct_fields__)
CONVERSION_FIELDS = list(ConversionRequest.__struct_fields__)


def _bodies(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the request's own field names holding any JSON value, plus strangers."""
    return st.dictionaries(
        st.sampled_from(fields) | st.text(max_size=8), json_values | deep_values, max_size=12
    )


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()  # ASCII: lone surrogates are escaped


# -- tag derivation ----------------------------------------------------------------------------

maybe_text = st.none() | st.text() | st.text(alphabet=" \t\n\u3000")
labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)
schemes = st.sampled_from(["http", "https", "HTTPS"])
userinfo = st.sampled_from(["", "user@", "user:secret@"])
ports = st.just("") | st.integers(1, 65535).map(":{}".format)
paths = st.sampled_from(["", "/", "/checkout?step=1", "/a#frag"])
urls = st.builds("{}://{}{}{}".format, schemes, hosts, ports, paths)


@FUZZ
@given(maybe_text, maybe_text, maybe_text, maybe_text)
def test_derive_tag_id_never_raises_and_is_never_empty(
    tag_id: str | None, page_url: str | None, origin: str | None, referer: str | None
) -> None:
    derived = derive_tag_id(tag_id, page_url, origin, referer)
    assert derived
    if tag_id is not None and tag_id.strip():
        assert derived == tag_id
    else:
        assert derived.startswith("site:")
        assert len(derived) > len("site:")


@FUZZ
@given(
    st.sampled_from([None, "", "   "]),
    st.tuples(schemes, userinfo, hosts, ports, paths),
    maybe_text,
    maybe_text,
)
def test_derived_tag_is_the_lower_case_host_without_port(
    tag_id: str | None,
    parts: tuple[str, str, str, str, str],
    origin: str | None,
    referer: str | None,
) -> None:
    """Contract: `site:<host>`, the lower-cased hostname, port dropped; page_url comes first."""
    scheme, user, host, port, path = parts
    page_url = f"{scheme}://{user}{host}{port}{path}"
    assert derive_tag_id(tag_id, page_url, origin, referer) == f"site:{host.lower()}"


@FUZZ
@given(urls, urls)
def test_origin_then_referer_when_page_url_has_no_host(origin: str, referer: str) -> None:
    expected = urlsplit(origin).hostname
    assert derive_tag_id(None, "/relative/path", origin, referer) == f"site:{expected}"
    assert derive_tag_id(" ", None, None, referer) == f"site:{urlsplit(referer).hostname}"
    assert derive_tag_id(None, "no host", "", None) == "site:unknown"


# -- decoding and validation -------------------------------------------------------------------


@FUZZ
@given(json_values)
def test_decode_collect_on_any_json_value_is_a_request_or_an_ingest_error(value: Any) -> None:
    try:
        request = validate.decode_collect(_encode(value))
    except IngestError:
        return
    assert isinstance(request, CollectRequest)


@FUZZ
@given(st.binary(max_size=200))
def test_decoders_on_any_bytes_are_a_value_or_an_ingest_error(body: bytes) -> None:
    for decode in (validate.decode_collect, validate.decode_object):
        with contextlib.suppress(IngestError):
            decode(body)


@FUZZ
@given(_bodies(COLLECT_FIELDS))
def test_collect_row_from_any_object_is_a_row_or_an_ingest_error(body: dict[str, Any]) -> None:
    try:
        row = INGESTOR.event_row(_encode(body), KEY, CONTEXT)
    except IngestError:
        return
    assert row["event_name"] == body["event_name"]
    assert row["channel"] == "server"
    assert row["tag_id"]
    assert row["params"]["integration"] == "partner_s2s"


@FUZZ
@given(_bodies(CONVERSION_FIELDS))
def test_conversion_row_from_any_object_is_a_row_or_an_ingest_error(
    body: dict[str, Any],
) -> None:
    try:
        row = INGESTOR.conversion_row(_encode(body), KEY, CONTEXT)
    except IngestError:
        return
    assert isinstance(row["conversion_value"], Decimal)
    assert row["currency"] == row["currency"].upper()
    assert row["conversion_time"].endswith("Z")


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["click_id", "conversion_time", "conversion_value", "currency"]),
        json_values,
    ).map(
        lambda fields: {
            "click_id": "c",
            "conversion_time": "2026-02-19T18:00:00Z",
            "conversion_value": 1,
            "currency": "usd",
            **fields,
        }
    )
)
def test_required_conversion_fields_of_any_type(body: dict[str, Any]) -> None:
    """Each is checked by name, so whatever is wrong, the error says which field it is."""
    details: tuple[Any, ...] = ("stored",)
    try:
        INGESTOR.conversion_row(_encode(body), KEY, CONTEXT)
    except IngestError as error:
        details = error.details
    assert details


@FUZZ
@given(st.text(max_size=40))
def test_conversion_time_of_any_text_is_utc_or_a_422(text: str) -> None:
    try:
        moment = validate.parse_conversion_time(text)
    except ValidationFailed as error:
        field = error.details[0].field
    else:
        field = "conversion_time"
        assert moment.utcoffset() == timedelta(0)
    assert field == "conversion_time"


offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@FUZZ
@given(st.datetimes(timezones=offsets))
def test_any_aware_datetime_is_read_back_as_the_same_instant(moment: datetime) -> None:
    try:
        parsed = validate.parse_conversion_time(moment.isoformat())
    except ValidationFailed:
        # Only an instant that UTC cannot hold: year 1 or 9999 shifted past its end.
        parsed = None
    assert parsed == moment or (parsed is None and moment.year in (1, 9999))


# -- money -------------------------------------------------------------------------------------

money = st.decimals(
    min_value=Decimal("-999999999999999.999999999999"),
    max_value=Decimal("999999999999999.999999999999"),
    allow_nan=False,
    allow_infinity=False,
    places=12,
)


def _conversion_with_value(literal: str) -> bytes:
    body = _encode({"click_id": "c", "conversion_time": "2026-02-19T18:00:00Z", "currency": "USD"})
    return body[:-1] + b', "conversion_value": ' + literal.encode() + b"}"


@FUZZ
@given(money)
def test_conversion_value_keeps_the_digits_sent(value: Decimal) -> None:
    """Contract: money is exact, exported in plain notation with the client's digits:
    `49.990` is "49.990", `1.50e1` is "15.0"; each value is also sent in exponent notation."""
    plain = format(value, "f").removeprefix("-") if value.is_zero() else format(value, "f")
    for literal in (plain, f"{value:e}"):
        row = INGESTOR.conversion_row(_conversion_with_value(literal), KEY, CONTEXT)
        assert plain_text(row["conversion_value"]) == plain


@FUZZ
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_conversion_value_out_of_bounds_is_a_422_and_any_other_is_kept(value: Decimal) -> None:
    """Contract: |value| < 10^15 and at most 12 digits after the decimal point, else a 422."""
    literal = f"{value:e}"
    exponent = cast(int, value.as_tuple().exponent)
    in_bounds = exponent >= -12 and (value.is_zero() or value.copy_abs() < Decimal(10) ** 15)
    body = _conversion_with_value(literal)
    if in_bounds:
        assert INGESTOR.conversion_row(body, KEY, CONTEXT)["conversion_value"] == value
    else:
        with pytest.raises(ValidationFailed) as raised:
            INGESTOR.conversion_row(body, KEY, CONTEXT)
        assert raised.value.details[0].field == "conversion_value"


# -- nesting depth -----------------------------------------------------------------------------


@FUZZ
@given(st.integers(0, 3 * json_bounds.MAX_JSON_DEPTH), st.sampled_from(["list", "dict"]))
def test_check_depth_refuses_exactly_what_is_deeper_than_the_limit(levels: int, kind: str) -> None:
    value = _nested(1, levels, kind)
    if levels > json_bounds.MAX_JSON_DEPTH:
        with pytest.raises(ValidationFailed) as raised:
            json_bounds.check_depth(value, "params")
        assert raised.value.details[0].field == "params"
    else:
        json_bounds.check_depth(value, "params")


@FUZZ
@given(st.text(min_size=1), st.sampled_from(["[", "{"]))
def test_a_body_too_deep_for_the_decoder_names_its_field(key: str, kind: str) -> None:
    deep = "[" * 5000 + "]" * 5000 if kind == "[" else '{"a":' * 5000 + "1" + "}" * 5000
    body = ("{" + json.dumps(key) + ": " + deep + "}").encode("utf-8", "surrogatepass")
    error = json_bounds.too_deep(body)
    assert isinstance(error, ValidationFailed)
    assert error.details[0].field == key


# -- params.extra ------------------------------------------------------------------------------

control_heavy_text = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from("\x00\x1b\x7f\x85\x9b\t\n\r\u2028"),
    max_size=12,
)


def _repeated(text: str, times: int) -> str:
    return (text or "x") * times


# Sizes just around each bound are built, not drawn item by item, to keep the examples cheap.
long_text = st.builds(_repeated, control_heavy_text, st.integers(EXTRA_MAX_STRING_CHARS - 2, 1100))
long_keys = st.builds(_repeated, control_heavy_text, st.integers(EXTRA_MAX_KEY_CHARS - 2, 140))
extra_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | control_heavy_text
    | long_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(control_heavy_text | long_keys, inner, max_size=4)
        | st.builds(lambda n, item: [item] * n, st.integers(EXTRA_MAX_ITEMS - 2, 60), inner)
        | st.builds(
            lambda n, item: {f"k{i}": item for i in range(n)},
            st.integers(EXTRA_MAX_KEYS - 2, 60),
            inner,
        )
    ),
    max_leaves=12,
)
extra_fields = st.dictionaries(
    control_heavy_text | long_keys,
    st.builds(_nested, extra_values, st.integers(0, 8), st.sampled_from(["list", "dict"])),
    max_size=6,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _controls(text: str, allowed: str = "") -> set[str]:
    return {c for c in text if unicodedata.category(c) == "Cc" and c not in allowed}


def _check_bounded(value: Any) -> None:
    if isinstance(value, dict):
        assert len(value) <= EXTRA_MAX_KEYS
        for key, item in value.items():
            assert key
            assert len(key) <= EXTRA_MAX_KEY_CHARS
            assert not _controls(key)
            _check_bounded(item)
    elif isinstance(value, list):
        assert len(value) <= EXTRA_MAX_ITEMS
        for item in value:
            _check_bounded(item)
    elif isinstance(value, str):
        assert len(value) <= EXTRA_MAX_STRING_CHARS
        # Tab, line feed and carriage return are kept: a note may span lines.
        assert not _controls(value, allowed="\t\n\r")
    else:
        assert value is None or isinstance(value, bool | int | Decimal)


@FUZZ
@given(extra_fields)
def test_sanitize_extra_is_bounded_and_free_of_control_characters(fields: dict[str, Any]) -> None:
    clean = sanitize_extra(fields)
    assert _depth(clean) <= EXTRA_MAX_DEPTH
    _check_bounded(clean)
    # And it is JSON the store can write.
    msgspec.json.encode(clean)


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20))
def test_sanitize_extra_keeps_printable_text_as_it_is(text: str) -> None:
    assume(not _controls(text))
    assert sanitize_extra({text: text}) == {text: text}
