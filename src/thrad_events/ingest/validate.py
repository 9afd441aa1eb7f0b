"""Turn raw request bodies into validated request Structs, or the contract's 400/422 errors.

A valid body costs one strict decode (collect) or one generic decode and a convert
(conversion). Once a body is refused, the error lists every problem in it (ingest/problems.py).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Container, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import iso4217
import msgspec

from thrad_events import money
from thrad_events.enrich.ip import canonical_ip
from thrad_events.errors import (
    IngestError,
    InvalidJson,
    MissingField,
    PayloadTooLarge,
    ValidationFailed,
    field_error,
)
from thrad_events.ingest.json_bounds import (
    MAX_JSON_DEPTH,
    MAX_NUMBER_EXPONENT,
    NUMBER_OUT_OF_RANGE,
    check_depth,
    check_numbers,
    too_deep,
)
from thrad_events.ingest.problems import REQUIRED, Format, Problems, check_fields, json_kind
from thrad_events.schemas import (
    CONVERSION_FIELDS,
    MAX_BATCH_ITEMS,
    ClickCreateRequest,
    CollectRequest,
    ConversionRequest,
)

_collect_decoder = msgspec.json.Decoder(CollectRequest, strict=True)
# Conversions are decoded generically first: unknown fields must survive (params.extra) and
# JSON numbers must become exact Decimals, never binary floats.
_generic_decoder = msgspec.json.Decoder(float_hook=Decimal)
# The error path's decoders: a body's members one by one, and a collect field as the strict
# decoder reads it (numbers as doubles).
_members_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_value_decoder = msgspec.json.Decoder()
REQUIRED_CONVERSION_FIELDS = tuple(
    f.encode_name for f in msgspec.structs.fields(ConversionRequest) if f.required
)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
CURRENCIES = frozenset(c.code for c in iso4217.Currency)


def decode_collect(body: bytes) -> CollectRequest:
    """A collect body's request; the caller checks the formats (client_ip, view_time_ms) and,
    should one be wrong, raises collect_error(body) to list every problem."""
    try:
        request = _collect_decoder.decode(body)
    except msgspec.ValidationError:
        raise collect_error(body) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(body) from None
    data = bytes(body)  # no copy of bytes; a batch item arrives as a msgspec.Raw
    check_utf8(data)
    # No value can nest MAX_JSON_DEPTH levels in a text with fewer brackets than that (brackets
    # inside strings only raise the count), so most bodies skip the walk.
    if data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH:
        try:
            check_depth(request.consent, "consent")
            check_depth(request.params, "params")
        except IngestError as error:
            raise collect_error(data, error) from None
    return request


def collect_error(body: bytes, first: IngestError | None = None) -> IngestError:
    """Every problem of a refused collect body as one error (`first`: what refused it)."""
    problems = Problems()
    values = _decode_members(body, _value_decoder, math.inf, problems, _COLLECT_FIELDS)
    check_fields(CollectRequest, values, problems, _COLLECT_FORMATS)
    return problems.error() or first or _UNEXPLAINED


def conversion_error(
    raw: Mapping[str, Any], first: IngestError | None = None, problems: Problems | None = None
) -> IngestError:
    """Every problem of a refused conversion body (decoded: `raw`) as one error."""
    problems = problems or Problems()
    check_fields(ConversionRequest, raw, problems, _CONVERSION_FORMATS)
    for name, value in raw.items():
        if name not in CONVERSION_FIELDS:
            problems.check(check_numbers, value, name)
    return problems.error() or first or _UNEXPLAINED


# Never expected: the checker finds every problem the strict decode refuses (a property test
# holds them to it), but a refusal must never become a 500.
_UNEXPLAINED = ValidationFailed("body has a value of the wrong type or format")
_COLLECT_FIELDS = frozenset(CollectRequest.__struct_fields__)


def _decode_members(
    body: bytes,
    decoder: msgspec.json.Decoder[Any],
    beyond: float | Decimal,
    problems: Problems,
    names: Container[str] | None = None,
) -> dict[str, Any]:
    """The body's members (only `names`, when given) decoded one by one, on the error path.

    A number too large for the decoder becomes `beyond` (with its sign), which the field's own
    check then refuses in its own words; one nested deeper is reported here.
    """
    data = bytes(body)
    try:
        members = _members_decoder.decode(data)
    except msgspec.ValidationError:
        raise InvalidJson(f"body must be a JSON object, not {json_kind(data)}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(data) from None
    check_utf8(data)
    values: dict[str, Any] = {}
    for name, raw in members.items():
        if names is not None and name not in names:
            continue
        try:
            values[name] = decoder.decode(raw)
        except msgspec.ValidationError:
            text = bytes(raw)
            if text[:1] in b"-0123456789":
                values[name] = -beyond if text.startswith(b"-") else beyond
            else:
                problems.add(name, NUMBER_OUT_OF_RANGE)
        except RecursionError:
            problems.add(name, f"nested deeper than {MAX_JSON_DEPTH} levels")
    return values


def check_utf8(body: bytes) -> None:
    """A body must be UTF-8 throughout, also in the unknown fields a Struct decoder skips unread."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(f"body is not valid UTF-8: {exc}") from None


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a conversion body: a JSON object, numbers as exact Decimals (ints stay ints)."""
    try:
        value = _generic_decoder.decode(body)
    except msgspec.ValidationError:
        # Only an integer too long for Python to read gets here: name its field, and the rest.
        problems = Problems()
        values = _decode_members(body, _generic_decoder, _BEYOND_ANY_AMOUNT, problems)
        raise conversion_error(values, problems=problems) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(body) from None
    if not isinstance(value, dict):
        raise InvalidJson(f"body must be a JSON object, not {json_kind(bytes(body))}")
    return value


# What a number too long for Python to read stands for: beyond every bound of this module.
_BEYOND_ANY_AMOUNT = Decimal(f"1e{MAX_NUMBER_EXPONENT + 100}")


def convert_conversion(raw: dict[str, Any]) -> ConversionRequest:
    """Validate a decoded conversion body; the caller keeps `raw` for the unknown fields, checks
    the formats (client_ip, conversion_time, currency) and, should one be wrong, raises
    conversion_error(raw) to list every problem."""
    try:
        for name in REQUIRED_CONVERSION_FIELDS:
            if raw.get(name) is None:
                raise field_error(MissingField, name, REQUIRED)
        value = raw["conversion_value"]
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise field_error(ValidationFailed, "conversion_value", "must be a number")
        try:
            amount = money.exact_amount(Decimal(value))
        except money.NotAnAmount as problem:
            raise field_error(ValidationFailed, "conversion_value", str(problem)) from None
        known = {k: v for k, v in raw.items() if k in CONVERSION_FIELDS and v is not None}
        known["conversion_value"] = amount
        request = msgspec.convert(known, ConversionRequest, strict=True)
        check_depth(request.consent, "consent")
        check_depth(request.params, "params")
        check_numbers(request.consent, "consent")
        check_numbers(request.params, "params")
        for name, extra in raw.items():
            if name not in CONVERSION_FIELDS:
                check_numbers(extra, name)
    except IngestError as error:
        raise conversion_error(raw, error) from None
    except msgspec.ValidationError:
        raise conversion_error(raw) from None
    return request


def _check_amount(value: int | Decimal) -> Decimal:
    """The error path's check of conversion_value, as convert_conversion does it inline."""
    try:
        return money.exact_amount(Decimal(value))
    except money.NotAnAmount as problem:
        raise field_error(ValidationFailed, "conversion_value", str(problem)) from None


def parse_conversion_time(text: str) -> datetime:
    """ISO-8601 with a date and a time; no offset means UTC. Returned in UTC."""
    # isprintable: fromisoformat accepts a trailing NUL ("2026-02-19T18:00:00\x00").
    if not _DATE_TIME.match(text) or not text.isprintable():
        raise field_error(ValidationFailed, "conversion_time", "must be an ISO-8601 date and time")
    if text.endswith("z"):
        text = text[:-1] + "Z"  # RFC 3339 allows a lower-case zone designator
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise field_error(
            ValidationFailed, "conversion_time", "must be an ISO-8601 date and time"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00: no such instant in UTC.
        raise field_error(
            ValidationFailed, "conversion_time", "is outside the years 1 to 9999 in UTC"
        ) from None


def normalize_currency(text: str) -> str:
    code = text.upper()
    if code not in CURRENCIES:
        raise field_error(ValidationFailed, "currency", f"{text!r} is not an ISO 4217 code")
    return code


def check_client_ip(text: str | None) -> str | None:
    """The body's client_ip in canonical form (enrich/ip.py); anything but an IP address is a
    422."""
    if text is None:
        return None
    try:
        return str(canonical_ip(ipaddress.ip_address(text.strip())))
    except ValueError:
        raise field_error(
            ValidationFailed, "client_ip", "must be an IPv4 or IPv6 address"
        ) from None


def truncate_timestamp(value: int | float | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, float):
        if not math.isfinite(value):
            raise field_error(ValidationFailed, "timestamp", "must be a finite number")
        return int(value)
    return value


def whole_view_time(value: int | float | None) -> int | None:
    """view_time_ms as an integer: a float must have no fraction (1007.0, not 1007.5)."""
    if isinstance(value, float):
        if not value.is_integer():
            raise field_error(
                ValidationFailed, "view_time_ms", "must be a whole number of milliseconds"
            )
        return int(value)
    return value


def _check_object(value: Any, field: str) -> None:
    check_depth(value, field)
    check_numbers(value, field)


# What each field must be beyond its declared type and bounds, checked on the error path (the
# fast path calls the same functions where it builds the row).
_COLLECT_FORMATS: dict[str, Format] = {
    "client_ip": check_client_ip,
    "view_time_ms": whole_view_time,
    "consent": lambda value: check_depth(value, "consent"),
    "params": lambda value: check_depth(value, "params"),
}
_CONVERSION_FORMATS: dict[str, Format] = {
    "conversion_value": _check_amount,
    "conversion_time": parse_conversion_time,
    "currency": normalize_currency,
    "client_ip": check_client_ip,
    "consent": lambda value: _check_object(value, "consent"),
    "params": lambda value: _check_object(value, "params"),
}


class _Events(msgspec.Struct):
    events: list[msgspec.Raw]


class _Conversions(msgspec.Struct):
    conversions: list[msgspec.Raw]


_batch_decoders: dict[str, msgspec.json.Decoder[_Events] | msgspec.json.Decoder[_Conversions]] = {
    "events": msgspec.json.Decoder(_Events),
    "conversions": msgspec.json.Decoder(_Conversions),
}


def decode_batch(body: bytes, field: str) -> list[msgspec.Raw]:
    """The items of a batch body (`field`: events or conversions), each still raw JSON."""
    try:
        envelope = _batch_decoders[field].decode(body)
    except msgspec.ValidationError:
        raise _batch_error(body, field) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(body) from None
    check_utf8(body)
    items: list[msgspec.Raw] = getattr(envelope, field)
    if len(items) > MAX_BATCH_ITEMS:
        raise field_error(PayloadTooLarge, field, f"at most {MAX_BATCH_ITEMS} items per batch")
    return items


def _batch_error(body: bytes, field: str) -> IngestError:
    """A batch body without its array: not an object, the array missing or null, or no array."""
    problems = Problems()
    values = _decode_members(body, _value_decoder, math.inf, problems, (field,))
    if values.get(field) is None and not problems.invalid:
        return field_error(MissingField, field, f"required: a JSON array of {field}")
    return field_error(ValidationFailed, field, f"must be a JSON array of {field}")


_click_create_decoder = msgspec.json.Decoder(ClickCreateRequest, strict=True)
_CLICK_CREATE_FIELDS = frozenset(ClickCreateRequest.__struct_fields__)


def decode_click_create(body: bytes) -> ClickCreateRequest:
    """A test click's body (an empty body is `{}`); every problem listed when refused."""
    if not body.strip():
        return ClickCreateRequest()
    try:
        return _click_create_decoder.decode(body)
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(body) from None
    problems = Problems()
    values = _decode_members(body, _value_decoder, math.inf, problems)
    check_fields(ClickCreateRequest, values, problems, {})
    for name in values:
        if name not in _CLICK_CREATE_FIELDS:
            problems.add(name, "unknown field: a test click takes campaign_id, ad_id, bid_id")
    raise problems.error() or _UNEXPLAINED
