"""What a report asks for (time range, groupings, filters, scope), validated from user input.

The HTTP endpoints and the CLI build their queries here, so both accept the same fields and
reject the same mistakes, as a 422 validation_error naming the parameter. Every field a report
groups or filters by comes from a whitelist; a params key must match a strict pattern and reaches
SQL only as a bound parameter, never as SQL text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from thrad_events.errors import ValidationFailed, field_error
from thrad_events.fields import CLICKS, CONVERSIONS, EVENTS

DEFAULT_RANGE = timedelta(days=7)
# Times outside the years 1970 to 9999 (UTC) are mistakes.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
_OUT_OF_RANGE = "must be in the years 1970 to 9999 (UTC)"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_GROUP_BY = 5
MAX_FILTER_VALUES = 50
MAX_FILTER_VALUE_CHARS = 256
# A params key, dotted for nested objects: params.extra.customer_tier.
PARAMS_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PARAMS_PREFIX = "params."


class Report(enum.StrEnum):
    EVENTS = "events"
    CONVERSIONS = "conversions"
    FUNNEL = "funnel"


class TimeBasis(enum.StrEnum):
    """The time a report ranges and groups by: when it happened, or when we received it.

    A backfilled event (sent today with yesterday's timestamp) lands on its own day by the
    event basis. For the funnel both are the click's receive time: a click has no other.
    """

    EVENT = "event"  # events: timestamp; conversions: conversion_time
    RECEIVED = "received"  # received_at


class NameKind(enum.StrEnum):
    """Which event names a report counts: Thrad's standard taxonomy (taxonomy.py) or the rest."""

    STANDARD = "standard"
    CUSTOM = "custom"


class FieldKind(enum.Enum):
    DAY = "day"  # UTC day of the report's time basis, 2026-02-19
    HOUR = "hour"  # UTC hour of the report's time basis, 2026-02-19T18:00:00Z
    COLUMN = "column"  # a column of the report's own table
    CLICK = "click"  # a column of the click a conversion belongs to (joined through click_id)
    PARAMS = "params"  # a key of the row's params object, as text


@dataclass(frozen=True, slots=True)
class ReportField:
    name: str  # as the user writes it: "day", "tag_id", "params.step"
    kind: FieldKind
    column: str = ""  # COLUMN and CLICK
    path: tuple[str, ...] = ()  # PARAMS: the keys, outermost first


@dataclass(frozen=True, slots=True)
class Filter:
    """Rows whose `field` equals any of `values` (filters on different fields all apply)."""

    field: ReportField
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    since: datetime  # inclusive, on the time basis (the click's received_at, for the funnel)
    until: datetime  # exclusive
    partner_id: str | None  # None: every partner, an operator's view
    time_basis: TimeBasis = TimeBasis.EVENT
    group_by: tuple[ReportField, ...] = ()
    filters: tuple[Filter, ...] = ()
    limit: int = DEFAULT_LIMIT
    # Rows sent with test keys (and test clicks) are counted only when asked for.
    include_test: bool = False
    # Events by event_name, conversions by event_type; None: every name.
    names: NameKind | None = None


@dataclass(frozen=True, slots=True)
class EventsQuery(ReportQuery):
    """Counts of events."""


@dataclass(frozen=True, slots=True)
class ConversionsQuery(ReportQuery):
    """Counts of conversions and their revenue per currency."""


@dataclass(frozen=True, slots=True)
class FunnelQuery(ReportQuery):
    """Clicks in the range, the conversions they led to, and how long those took."""


AnyReportQuery = EventsQuery | ConversionsQuery | FunnelQuery

_QUERY_TYPES: dict[Report, type[AnyReportQuery]] = {
    Report.EVENTS: EventsQuery,
    Report.CONVERSIONS: ConversionsQuery,
    Report.FUNNEL: FunnelQuery,
}


def _columns(
    kind: FieldKind, table: tuple[str, ...], names: Iterable[str]
) -> dict[str, ReportField]:
    # Enrichment columns arrive with migrations: offer a column only once the table has it.
    return {name: ReportField(name, kind, column=name) for name in names if name in table}


_TIME = {
    "day": ReportField("day", FieldKind.DAY),
    "hour": ReportField("hour", FieldKind.HOUR),
}

FIELDS: dict[Report, dict[str, ReportField]] = {
    Report.EVENTS: {
        **_TIME,
        **_columns(
            FieldKind.COLUMN,
            EVENTS.columns,
            (
                "event_name",
                "tag_id",
                "channel",
                "geo_country",
                "ua_browser",
                "ua_device_type",
                "partner_id",
            ),
        ),
    },
    Report.CONVERSIONS: {
        **_TIME,
        **_columns(
            FieldKind.COLUMN,
            CONVERSIONS.columns,
            ("tag_id", "event_type", "currency", "channel", "partner_id"),
        ),
        **_columns(FieldKind.CLICK, CLICKS.columns, ("campaign_id", "ad_id")),
    },
    Report.FUNNEL: {
        **_TIME,
        **_columns(FieldKind.COLUMN, CLICKS.columns, ("campaign_id", "ad_id", "tag_id")),
    },
}
# Reports over a table with a params column also group and filter by its keys.
WITH_PARAMS = frozenset({Report.EVENTS, Report.CONVERSIONS})
DEFAULT_GROUP_BY: dict[Report, tuple[str, ...]] = {Report.FUNNEL: ("campaign_id",)}
QUERY_PARAMETERS = (
    "since", "until", "time_basis", "group_by", "filter", "limit", "include_test", "names"
)  # fmt: skip
# Reports over named rows (event_name, event_type) also take names=standard|custom.
WITH_NAMES = frozenset({Report.EVENTS, Report.CONVERSIONS})


def field_names(report: Report) -> list[str]:
    names = list(FIELDS[report])
    if report in WITH_PARAMS:
        names.append("params.<key>")
    return names


def parse_report_query(
    report: Report,
    items: Iterable[tuple[str, str]],
    *,
    partner_id: str | None,
    now: datetime,
) -> AnyReportQuery:
    """Build a query from (name, value) pairs as they come in a query string.

    `partner_id` is the scope decided by authentication; it is not read from `items`.
    """
    given = given_parameters(items, QUERY_PARAMETERS)
    since, until = time_range(given, now)
    group_by = _group_by(report, given.get("group_by", []))
    if not group_by:
        group_by = tuple(
            _field(report, name, "group_by") for name in DEFAULT_GROUP_BY.get(report, ())
        )
    return _QUERY_TYPES[report](
        since=since,
        until=until,
        partner_id=partner_id,
        time_basis=_time_basis(given),
        group_by=group_by,
        filters=_filters(report, given.get("filter", [])),
        limit=limit_value(single_value(given, "limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT),
        include_test=include_test(given),
        names=_names(report, given),
    )


def given_parameters(
    items: Iterable[tuple[str, str]], known: Sequence[str]
) -> dict[str, list[str]]:
    """The values of each parameter in `items`, in order; a name not `known` is refused."""
    given: dict[str, list[str]] = {}
    for name, value in items:
        if name not in known:
            raise field_error(ValidationFailed, name, "unknown query parameter")
        given.setdefault(name, []).append(value)
    return given


def time_range(given: Mapping[str, list[str]], now: datetime) -> tuple[datetime, datetime]:
    """since and until as given, until `now` and since DEFAULT_RANGE before until if not."""
    until = time_value(given, "until") or now
    # The default range never reaches before the earliest time a range may name.
    since = time_value(given, "since") or max(until - DEFAULT_RANGE, EARLIEST)
    if since >= until:
        raise field_error(ValidationFailed, "since", "must be before until")
    return since, until


def group_by_names(raw: Iterable[str]) -> list[str]:
    """The field names of group_by values, each a name or a comma-separated list of them."""
    return [name.strip() for value in raw for name in value.split(",") if name.strip()]


def _names(report: Report, given: Mapping[str, list[str]]) -> NameKind | None:
    raw = single_value(given, "names")
    if raw is None:
        return None
    if report not in WITH_NAMES:
        raise field_error(ValidationFailed, "names", f"the {report} report has no names")
    try:
        return NameKind(raw.strip())
    except ValueError:
        raise field_error(ValidationFailed, "names", "must be standard or custom") from None


def single_value(given: Mapping[str, list[str]], name: str) -> str | None:
    """The value of the parameter `name`, None when not given; given twice is a 422."""
    values = given.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise field_error(ValidationFailed, name, "given more than once")
    return values[0]


def time_value(given: Mapping[str, list[str]], name: str) -> datetime | None:
    """The parameter `name` as a time in UTC (ISO-8601, UTC when no offset), None when not
    given."""
    raw = single_value(given, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise field_error(
            ValidationFailed, name, "must be an ISO-8601 date or time, e.g. 2026-02-19T18:00:00Z"
        ) from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise field_error(ValidationFailed, name, _OUT_OF_RANGE) from None
    if not EARLIEST <= moment <= LATEST:
        raise field_error(ValidationFailed, name, _OUT_OF_RANGE)
    return moment


def _time_basis(given: Mapping[str, list[str]]) -> TimeBasis:
    raw = single_value(given, "time_basis")
    if raw is None:
        return TimeBasis.EVENT
    try:
        return TimeBasis(raw.strip())
    except ValueError:
        raise field_error(
            ValidationFailed,
            "time_basis",
            "must be one of " + ", ".join(basis.value for basis in TimeBasis),
        ) from None


def include_test(given: Mapping[str, list[str]]) -> bool:
    raw = single_value(given, "include_test")
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise field_error(ValidationFailed, "include_test", "must be true or false")


def limit_value(raw: str | None, *, default: int, maximum: int) -> int:
    """A `limit` parameter of any reader (reports, exports, rejections, admin lists): plain
    ASCII digits, 1 to `maximum`, `default` when not given. No sign, no `_`, no exponent, and
    no more digits than `maximum` has: what int() would also take is refused."""
    if raw is None:
        return default
    text = raw.strip()
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(maximum))
    limit = int(text) if digits else 0
    if not 1 <= limit <= maximum:
        raise field_error(ValidationFailed, "limit", f"must be a whole number from 1 to {maximum}")
    return limit


def _field(report: Report, name: str, parameter: str) -> ReportField:
    known = FIELDS[report].get(name)
    if known is not None:
        return known
    if report in WITH_PARAMS and name.startswith(PARAMS_PREFIX):
        key = name.removeprefix(PARAMS_PREFIX)
        path = tuple(key.split("."))
        if not PARAMS_KEY.match(key) or not all(path):
            raise field_error(
                ValidationFailed,
                parameter,
                f"{name!r}: a params key is 1-64 letters, digits, '_', '-', "
                "with '.' between the keys of nested objects",
            )
        return ReportField(name, FieldKind.PARAMS, path=path)
    raise field_error(
        ValidationFailed,
        parameter,
        f"{name!r} is not a field of the {report} report; use one of "
        + ", ".join(field_names(report)),
    )


def _group_by(report: Report, raw: list[str]) -> tuple[ReportField, ...]:
    names = group_by_names(raw)
    if len(names) > MAX_GROUP_BY:
        raise field_error(ValidationFailed, "group_by", f"at most {MAX_GROUP_BY} fields")
    if len(set(names)) != len(names):
        raise field_error(ValidationFailed, "group_by", "a field is given twice")
    return tuple(_field(report, name, "group_by") for name in names)


def _filters(report: Report, raw: list[str]) -> tuple[Filter, ...]:
    if len(raw) > MAX_FILTER_VALUES:
        raise field_error(ValidationFailed, "filter", f"at most {MAX_FILTER_VALUES} filters")
    values: dict[ReportField, list[str]] = {}
    for entry in raw:
        name, colon, value = entry.partition(":")
        if not colon or not value:
            raise field_error(
                ValidationFailed, "filter", f"{entry!r}: must be field:value, e.g. event_name:x"
            )
        if len(value) > MAX_FILTER_VALUE_CHARS:
            raise field_error(
                ValidationFailed, "filter", f"a value is longer than {MAX_FILTER_VALUE_CHARS}"
            )
        field = _field(report, name.strip(), "filter")
        if field.kind in (FieldKind.DAY, FieldKind.HOUR):
            raise field_error(
                ValidationFailed, "filter", f"{field.name!r}: choose the time with since and until"
            )
        bucket = values.setdefault(field, [])
        if value not in bucket:
            bucket.append(value)
    return tuple(Filter(field, tuple(found)) for field, found in values.items())
