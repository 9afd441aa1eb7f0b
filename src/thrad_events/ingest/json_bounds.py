"""Bounds on the free-form JSON a body may carry (consent, params, unknown fields): how deep it
nests and how large or fine its numbers are."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec

from thrad_events.errors import IngestError, InvalidJson, ValidationFailed, field_error

# A number with a fraction or an exponent inside consent, params or a conversion's unknown
# fields keeps its digits, within what a double holds: both stores, and whoever reads an
# export, can then take it (PostgreSQL's jsonb refuses 1e200000).
MAX_NUMBER_EXPONENT = 308
MAX_NUMBER_FRACTION_DIGITS = 340
# consent and params may nest objects and arrays this deep; deeper is a 422 naming the field.
MAX_JSON_DEPTH = 32
# A string (escapes included) or a bracket: enough to follow the nesting of a JSON text.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
NUMBER_OUT_OF_RANGE = (
    f"number out of range: below 1e{MAX_NUMBER_EXPONENT + 1} in magnitude, "
    f"at most {MAX_NUMBER_FRACTION_DIGITS} digits after the decimal point"
)


def check_numbers(value: Any, field: str) -> None:
    """A decimal number anywhere inside `value` beyond the bounds above is a 422 naming its path.

    Only exponents are read, so a hostile one (1e-300000000) costs nothing; paths are spelled
    out only once a number is found out of bounds.
    """
    if isinstance(value, Decimal | dict | list) and _holds_bad_number(value):
        pending = [(value, field)]
        while pending:
            item, path = pending.pop()
            if isinstance(item, Decimal):
                if _out_of_bounds(item):
                    raise field_error(ValidationFailed, path, NUMBER_OUT_OF_RANGE)
            elif isinstance(item, dict):
                pending.extend((child, f"{path}.{key}") for key, child in item.items())
            elif isinstance(item, list):
                pending.extend((child, f"{path}[{i}]") for i, child in enumerate(item))


def _holds_bad_number(value: Decimal | dict[str, Any] | list[Any]) -> bool:
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Decimal):
            if _out_of_bounds(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _out_of_bounds(number: Decimal) -> bool:
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):
        return True  # not finite; JSON has no such number, but a caller may pass one
    if exponent < -MAX_NUMBER_FRACTION_DIGITS:
        return True
    return not number.is_zero() and number.adjusted() > MAX_NUMBER_EXPONENT


def check_depth(value: Any, field: str) -> None:
    """A value nesting objects and arrays deeper than MAX_JSON_DEPTH is a 422 naming `field`."""
    if isinstance(value, dict | list) and _deeper_than(value, MAX_JSON_DEPTH - 1):
        raise field_error(ValidationFailed, field, f"nested deeper than {MAX_JSON_DEPTH} levels")


def _deeper_than(container: dict[str, Any] | list[Any], room: int) -> bool:
    """True when `container` holds containers more than `room` levels below itself."""
    for child in container.values() if isinstance(container, dict) else container:
        if isinstance(child, dict | list) and (room == 0 or _deeper_than(child, room - 1)):
            return True
    return False


def too_deep(body: bytes) -> IngestError:
    """The error for a body nested too deep for the decoder itself (it stops near 1000 levels).

    Only on this error path is the text scanned, to name the top-level field holding the depth.
    """
    depth = 0
    key: bytes | None = None
    for token in _JSON_TOKEN.finditer(body):
        text = token[0]
        if text[0] == 0x22:  # a string; at depth 1 the last one before a value is its key
            if depth == 1:
                key = text
        elif text in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH + 1:
                break
        else:
            depth -= 1
    if key is None:
        return InvalidJson(f"body must be a JSON object nested at most {MAX_JSON_DEPTH} levels")
    try:
        field = msgspec.json.decode(key, type=str)
    except msgspec.DecodeError:  # a lone surrogate or bad UTF-8: name it as written
        field = key[1:-1].decode("utf-8", "replace")
    return field_error(ValidationFailed, field, f"nested deeper than {MAX_JSON_DEPTH} levels")
