"""Turn raw request bodies into validated request Structs, or the contract's 400/422 errors."""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import iso4217
import msgspec

from thrad_events.errors import (
    IngestError,
    InvalidJson,
    MissingField,
    ValidationFailed,
    field_error,
)
from thrad_events.schemas import CONVERSION_FIELDS, CollectRequest, ConversionRequest

_T = TypeVar("_T")

_collect_decoder = msgspec.json.Decoder(CollectRequest, strict=True)
# Conversions are decoded generically first: unknown fields must survive (params.extra) and
# JSON numbers must become exact Decimals, never binary floats.
_generic_decoder = msgspec.json.Decoder(float_hook=Decimal)

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
CURRENCIES = frozenset(c.code for c in iso4217.Currency)
MAX_CONVERSION_VALUE = Decimal("1e15")


def decode_collect(body: bytes) -> CollectRequest:
    try:
        return _collect_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _from_validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object with numbers as exact Decimals (ints stay ints)."""
    try:
        value = _generic_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidJson(f"body must be a JSON object, got {_json_type(value)}")
    return value


def convert_conversion(raw: dict[str, Any]) -> ConversionRequest:
    """Validate a decoded conversion body; the caller keeps `raw` for the unknown fields."""
    for name in ("click_id", "conversion_time", "conversion_value", "currency"):
        if raw.get(name) is None:
            raise field_error(MissingField, name, "required field is missing")
    value = raw["conversion_value"]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise field_error(
            ValidationFailed, "conversion_value", f"Expected `number`, got `{_json_type(value)}`"
        )
    if isinstance(value, Decimal) and not value.is_finite():
        raise field_error(ValidationFailed, "conversion_value", "must be a finite number")
    value = Decimal(value)
    if abs(value) >= MAX_CONVERSION_VALUE:
        raise field_error(ValidationFailed, "conversion_value", "must be below 1e15 in magnitude")
    known = {k: v for k, v in raw.items() if k in CONVERSION_FIELDS and v is not None}
    known["conversion_value"] = value
    return _convert(known, ConversionRequest)


def _convert(value: dict[str, Any], kind: type[_T]) -> _T:
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise _from_validation_error(exc) from None


def parse_conversion_time(text: str) -> datetime:
    """ISO-8601 with a date and a time; no offset means UTC. Returned in UTC."""
    if not _DATE_TIME.match(text):
        raise field_error(ValidationFailed, "conversion_time", "must be an ISO-8601 date and time")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise field_error(
            ValidationFailed, "conversion_time", "must be an ISO-8601 date and time"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_currency(text: str) -> str:
    code = text.upper()
    if code not in CURRENCIES:
        raise field_error(ValidationFailed, "currency", f"{text!r} is not an ISO 4217 code")
    return code


def check_client_ip(text: str | None) -> str | None:
    """The body's client_ip, normalised; anything but an IP address is a 422."""
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
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


def _from_validation_error(exc: msgspec.ValidationError) -> IngestError:
    text = str(exc)
    if missing := _MISSING.search(text):
        return field_error(MissingField, missing["field"], "required field is missing")
    match = _PATH.search(text)
    message = text[: match.start()] if match else text
    path = match["path"].lstrip(".") if match else ""
    if not path:
        # The document itself has the wrong shape (an array, a string, ...).
        return InvalidJson(f"body must be a JSON object: {message}")
    if message.endswith("got `null`") and "." not in path and path in _REQUIRED:
        return field_error(MissingField, path, "required field is missing")
    return field_error(ValidationFailed, path, message)


_REQUIRED = frozenset(
    {
        "event_name",
        "click_id",
        "conversion_time",
        "conversion_value",
        "currency",
    }
)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "array"
    return "object"
