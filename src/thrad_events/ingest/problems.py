"""Every problem of a request body, each with its field and plain words, as one error.

Only the error path comes here: the strict msgspec decode (or a check after it) has already
refused the body, and the client should learn everything wrong with it at once. The fields'
types and bounds are read from the request Struct (msgspec.inspect), so they stay declared once,
in schemas.py, and no library's message text is ever parsed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import inspect

from thrad_events.errors import (
    FieldProblem,
    IngestError,
    MissingField,
    ValidationFailed,
)

REQUIRED = "required field is missing"
# A field's check beyond its type and bounds: raises an IngestError naming the field.
Format = Callable[[Any], object]
# Meta(extra={"unit": ...}) in schemas.py names what a number counts, for the messages.
_UNITS = {"s": "seconds (Unix time)", "ms": "milliseconds"}
_KINDS: dict[type[inspect.Type], str] = {
    inspect.StrType: "a string",
    inspect.IntType: "a whole number",
    inspect.FloatType: "a number",
    inspect.DecimalType: "a number",
    inspect.DictType: "an object",
    inspect.ListType: "an array",
    inspect.BoolType: "true or false",
}


class Problems:
    """The problems found so far: missing required fields apart, since they decide the code."""

    def __init__(self) -> None:
        self.missing: list[FieldProblem] = []
        self.invalid: list[FieldProblem] = []

    def add(self, field: str, message: str) -> None:
        self.invalid.append(FieldProblem(field, message))

    def check(self, check: Callable[..., object], *args: Any) -> None:
        """Run a check that raises the field's IngestError (an address, a time, a code)."""
        try:
            check(*args)
        except IngestError as error:
            found = self.missing if isinstance(error, MissingField) else self.invalid
            found.extend(error.details)

    def error(self) -> IngestError | None:
        """One error for them all: 400 missing_field when a required field is missing (the type
        problems listed too), else 422 validation_error; None when there is no problem."""
        details = (*self.missing, *self.invalid)
        if not details:
            return None
        first = details[0]
        summary = f"{first.field}: {first.message}"
        if len(details) > 1:
            more = len(details) - 1
            summary += f" (and {more} more problem{'s' if more > 1 else ''})"
        kind = MissingField if self.missing else ValidationFailed
        return kind(summary, details)


def check_fields(
    struct: type[msgspec.Struct],
    values: Mapping[str, Any],
    problems: Problems,
    formats: Mapping[str, Format],
) -> None:
    """Check each of the Struct's fields in `values`, in its order: present when required, of
    its declared type and within its declared bounds, then of its format (`formats`, by field:
    a check raising the field's IngestError). A field already reported is skipped."""
    reported = {problem.field for problem in problems.invalid}
    for name, required, problem, item_problems in _plan(struct):
        if name in reported:
            continue
        value = values.get(name)
        if value is None:  # null means omitted
            if required:
                problems.missing.append(FieldProblem(name, REQUIRED))
            continue
        message = problem(value)
        if message is not None:
            problems.add(name, message)
            continue
        items = item_problems(name, value) if item_problems is not None else None
        if items:
            problems.invalid.extend(items)
        elif name in formats:
            problems.check(formats[name], value)


def json_kind(body: bytes) -> str:
    """What a JSON text that is no object is, from its first byte: for "must be an object"."""
    first = body.lstrip()[:1]
    kinds = {b"[": "an array", b'"': "a string", b"t": "true", b"f": "false", b"n": "null"}
    return kinds.get(first, "a number")


# The checks of a declared type are built once per Struct from its msgspec.inspect info, not
# worked out again from it for every refused body: a flood of bad bodies stays cheap.
# What is wrong with a (non-null) value, in plain words; None if it is right.
Problem = Callable[[Any], "str | None"]
# Whether a JSON value is of the kind a declared type takes (bounds aside).
Kind = Callable[[Any], bool]
# Each wrong item of a list value, named by its place (`origins[2]`).
ItemProblems = Callable[[str, Any], list[FieldProblem]]


@functools.cache
def _plan(
    struct: type[msgspec.Struct],
) -> tuple[tuple[str, bool, Problem, ItemProblems | None], ...]:
    info = inspect.type_info(struct)
    assert isinstance(info, inspect.StructType)
    return tuple(
        (f.encode_name, f.required, _problem(f.type), _item_problems(f.type)) for f in info.fields
    )


def _no_problem(value: Any) -> None:
    return None


def _problem(declared: inspect.Type, unit: str | None = None) -> Problem:
    """The check of a value of `declared`; `unit` (Meta(extra={"unit": ...})) words numbers."""
    if isinstance(declared, inspect.Metadata):
        return _problem(declared.type, (declared.extra or {}).get("unit", unit))
    if isinstance(declared, inspect.UnionType):
        members = [(_kind(member), _problem(member, unit)) for member in declared.types]
        wrong_union = _must_be(declared.types, unit)

        def union(value: Any) -> str | None:
            for kind, problem in members:
                if kind(value):
                    return problem(value)
            return wrong_union

        return union
    if isinstance(declared, inspect.AnyType):
        return _no_problem
    kind, bounds, wrong = _kind(declared), _bounds(declared, unit), _must_be((declared,), unit)

    def check(value: Any) -> str | None:
        return bounds(value) if kind(value) else wrong

    return check


def _bounds(declared: inspect.Type, unit: str | None) -> Problem:
    """The check of a value already of `declared`'s kind."""
    if isinstance(declared, inspect.StrType):
        return lambda value: _length_problem(len(value), declared)
    if isinstance(declared, inspect.IntType | inspect.FloatType):
        return lambda value: _range_problem(value, declared, unit)
    if isinstance(declared, inspect.DecimalType | inspect.DictType | inspect.BoolType):
        return _no_problem  # a dict's keys are strings in JSON; schemas.py gives it Any values
    if isinstance(declared, inspect.ListType):
        return lambda value: _count_problem(len(value), declared)  # its items: _item_problems
    return lambda value: "has the wrong type"  # a type schemas.py does not use yet: never accept


def _count_problem(count: int, declared: inspect.ListType) -> str | None:
    least, most = declared.min_length, declared.max_length
    if least is not None and count < least:
        return "must not be empty" if least == 1 else f"must have at least {least} items"
    if most is not None and count > most:
        return f"must have at most {most} items"
    return None


def _item_problems(declared: inspect.Type) -> ItemProblems | None:
    """The check of a list value's items, for the list `declared` takes a value as (a union's
    first member of the value's kind); None when `declared` takes no list."""
    if isinstance(declared, inspect.Metadata):
        return _item_problems(declared.type)
    if isinstance(declared, inspect.UnionType):
        members = [(_kind(member), _item_problems(member)) for member in declared.types]
        if all(items is None for _, items in members):
            return None

        def union(name: str, value: Any) -> list[FieldProblem]:
            for kind, items in members:
                if kind(value):
                    return items(name, value) if items is not None else []
            return []

        return union
    if not isinstance(declared, inspect.ListType):
        return None
    item_type = declared.item_type
    item_problem = _problem(item_type)
    null = None
    if not (
        isinstance(item_type, inspect.UnionType)
        and any(isinstance(member, inspect.NoneType) for member in item_type.types)
    ):
        null = "must not be null"

    def items(name: str, value: Any) -> list[FieldProblem]:
        if not isinstance(value, list):
            return []
        found: list[FieldProblem] = []
        for index, item in enumerate(value):
            message = null if item is None else item_problem(item)
            if message is not None:
                found.append(FieldProblem(f"{name}[{index}]", message))
        return found

    return items


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # An integer is also a float (strict msgspec); a bool is no number.
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _is_not_bool(value: Any) -> bool:
    return not isinstance(value, bool)


def _never(value: Any) -> bool:
    return False


def _kind(declared: inspect.Type) -> Kind:
    """Whether a JSON value is of the kind `declared` takes, as strict msgspec decides: a bool
    is no number, an integer is also a float, a float with no fraction no int."""
    if isinstance(declared, inspect.Metadata):
        declared = declared.type
    if isinstance(declared, inspect.StrType):
        return _is_str
    if isinstance(declared, inspect.BoolType):
        return _is_bool
    if isinstance(declared, inspect.IntType):
        return _is_int
    if isinstance(declared, inspect.FloatType | inspect.DecimalType):
        return _is_number
    if isinstance(declared, inspect.DictType):
        return _is_dict
    if isinstance(declared, inspect.ListType):
        return _is_list
    if isinstance(declared, inspect.AnyType):
        return _is_not_bool  # a bool is of the bool kind only
    return _never


def _must_be(types: tuple[inspect.Type, ...], unit: str | None) -> str:
    kinds: list[str] = []
    for member in types:
        if isinstance(member, inspect.Metadata):
            unit = (member.extra or {}).get("unit", unit)
            member = member.type
        kind = _KINDS.get(type(member))
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    if "a number" in kinds and "a whole number" in kinds:
        kinds.remove("a whole number")
    words = " or ".join(kinds) or "of another type"
    if unit is not None:
        words += f" of {_UNITS[unit]}"
    return f"must be {words}"


def _length_problem(length: int, declared: inspect.StrType) -> str | None:
    least, most = declared.min_length, declared.max_length
    if least is not None and least == most and length != least:
        return f"must be exactly {least} characters"
    if least is not None and length < least:
        return "must not be empty" if least == 1 else f"must be at least {least} characters"
    if most is not None and length > most:
        return f"must be at most {most} characters"
    return None


def _range_problem(
    number: int | float, declared: inspect.IntType | inspect.FloatType, unit: str | None
) -> str | None:
    low, high = declared.ge, declared.le
    above, below = declared.gt, declared.lt
    too_low = (low is not None and number < low) or (above is not None and number <= above)
    too_high = (high is not None and number > high) or (below is not None and number >= below)
    if not (too_low or too_high):
        return None
    if too_high and unit == "s" and high is not None and number <= high * 1000:
        # The commonest mistake with Unix time: JavaScript's Date.now() is in milliseconds.
        return (
            f"looks like milliseconds: must be Unix time in seconds "
            f"({int(number) // 1000}, not {number})"
        )
    units = f" {_UNITS[unit]}" if unit is not None else ""
    if low is not None and high is not None:
        return f"must be from {low} to {high}{units}"
    if too_low:
        bound = f"at least {low}" if low is not None else f"more than {above}"
    else:
        bound = f"at most {high}" if high is not None else f"less than {below}"
    return f"must be {bound}{units}"
