"""Report queries: the same whitelist and the same 422s for the HTTP endpoints and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from thrad_events.errors import ValidationFailed
from thrad_events.fields import EVENTS
from thrad_events.reports.query import (
    DEFAULT_LIMIT,
    FIELDS,
    AnyReportQuery,
    ConversionsQuery,
    EventsQuery,
    FieldKind,
    FunnelQuery,
    Report,
    TimeBasis,
    limit_value,
    parse_report_query,
)

NOW = datetime(2026, 2, 19, 18, 0, tzinfo=UTC)


def parse(report: Report, *items: tuple[str, str], partner: str | None = "ptn_a") -> AnyReportQuery:
    return parse_report_query(report, items, partner_id=partner, now=NOW)


def problem(report: Report, *items: tuple[str, str]) -> tuple[str, str]:
    with pytest.raises(ValidationFailed) as raised:
        parse(report, *items)
    (detail,) = raised.value.details
    return detail.field, detail.message


def test_defaults_are_the_last_seven_days_every_group_and_the_default_limit() -> None:
    query = parse(Report.EVENTS)
    assert isinstance(query, EventsQuery)
    assert (query.since, query.until) == (NOW - timedelta(days=7), NOW)
    assert query.group_by == ()
    assert query.filters == ()
    assert query.limit == DEFAULT_LIMIT
    assert query.partner_id == "ptn_a"


def test_the_time_basis_is_the_event_time_unless_received_is_asked_for() -> None:
    for report in Report:
        assert parse(report).time_basis is TimeBasis.EVENT
        assert parse(report, ("time_basis", "event")).time_basis is TimeBasis.EVENT
        assert parse(report, ("time_basis", " received ")).time_basis is TimeBasis.RECEIVED
    field, message = problem(Report.EVENTS, ("time_basis", "clicked"))
    assert (field, message) == ("time_basis", "must be one of event, received")


def test_each_report_has_its_own_query_type_and_the_funnel_groups_by_campaign() -> None:
    assert isinstance(parse(Report.CONVERSIONS), ConversionsQuery)
    funnel = parse(Report.FUNNEL)
    assert isinstance(funnel, FunnelQuery)
    assert [field.name for field in funnel.group_by] == ["campaign_id"]


def test_times_are_iso_8601_utc_when_no_offset_and_a_date_means_midnight() -> None:
    query = parse(Report.EVENTS, ("since", "2026-02-01"), ("until", "2026-02-02T03:00:00+02:00"))
    assert query.since == datetime(2026, 2, 1, tzinfo=UTC)
    assert query.until == datetime(2026, 2, 2, 1, 0, tzinfo=UTC)
    only_until = parse(Report.EVENTS, ("until", "2026-02-10T00:00:00Z"))
    assert only_until.since == datetime(2026, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-02"),
        ("9999-12-30", "9999-12-31T23:59:59.999999Z"),
        ("1969-12-31T23:00:00-01:00", "1970-01-01T00:00:01+00:00"),
    ],
)
def test_times_anywhere_in_the_years_1970_to_9999_are_accepted(since: str, until: str) -> None:
    """The range error says "years 1970 to 9999": the first week of 1970 and the year 9999
    were refused with that message before."""
    query = parse(Report.EVENTS, ("since", since), ("until", until))
    assert query.since >= datetime(1970, 1, 1, tzinfo=UTC)
    assert query.until.year in (1970, 9999)


def test_the_default_since_stops_at_1970() -> None:
    query = parse(Report.EVENTS, ("until", "1970-01-03"))
    assert query.since == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "1969-12-31T23:59:59.999999Z"),
        ("since", "0001-01-01"),
        ("until", "0001-01-01T00:00:00+01:00"),
        ("until", "9999-12-31T23:00:00-05:00"),
    ],
)
def test_times_outside_the_years_1970_to_9999_say_so(name: str, value: str) -> None:
    assert problem(Report.EVENTS, (name, value)) == (
        name,
        "must be in the years 1970 to 9999 (UTC)",
    )


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ((("since", "yesterday"),), "since"),
        ((("until", "2026-13-01"),), "until"),
        ((("since", "0001-01-01"),), "since"),
        ((("since", "2026-02-10"), ("until", "2026-02-10")), "since"),
        ((("since", "2026-02-01"), ("since", "2026-02-02")), "since"),
        ((("limit", "0"),), "limit"),
        ((("limit", "10001"),), "limit"),
        ((("limit", "ten"),), "limit"),
        ((("limit", "²"),), "limit"),
        ((("group_by", "user_agent"),), "group_by"),
        ((("group_by", "day,day"),), "group_by"),
        ((("group_by", "day,hour,tag_id,event_name,channel,partner_id"),), "group_by"),
        ((("filter", "event_name"),), "filter"),
        ((("filter", "event_name:"),), "filter"),
        ((("filter", "day:2026-02-19"),), "filter"),
        ((("filter", "ip_address:1.2.3.4"),), "filter"),
        ((("filter", "event_name:" + "x" * 257),), "filter"),
        ((("groupby", "day"),), "groupby"),
        ((("partner_id", "ptn_b"),), "partner_id"),
        ((("time_basis", "clicked"),), "time_basis"),
        ((("time_basis", "EVENT"),), "time_basis"),
        ((("time_basis", ""),), "time_basis"),
        ((("time_basis", "event"), ("time_basis", "received")), "time_basis"),
    ],
)
def test_a_bad_parameter_is_a_validation_error_naming_it(
    items: tuple[tuple[str, str], ...], field: str
) -> None:
    assert problem(Report.EVENTS, *items)[0] == field


@pytest.mark.parametrize(
    "key",
    [
        "params.",
        "params.a b",
        "params.a'b",
        'params.a"b',
        "params.a..b",
        "params.a.",
        "params.$",
        "params." + "k" * 65,
        "params.a)--",
    ],
)
def test_a_params_key_outside_the_strict_pattern_is_refused(key: str) -> None:
    assert problem(Report.EVENTS, ("group_by", key))[0] == "group_by"
    assert problem(Report.EVENTS, ("filter", f"{key}:x"))[0] == "filter"


def test_params_keys_are_paths_and_filter_values_of_one_field_are_alternatives() -> None:
    query = parse(
        Report.EVENTS,
        ("group_by", "params.step, day"),
        ("filter", "params.extra.customer_tier:gold"),
        ("filter", "event_name:page_view"),
        ("filter", "event_name:a:b"),
        ("filter", "event_name:page_view"),
    )
    step, day = query.group_by
    assert (step.kind, step.path, day.kind) == (FieldKind.PARAMS, ("step",), FieldKind.DAY)
    tier, name = query.filters
    assert tier.field.path == ("extra", "customer_tier")
    assert tier.values == ("gold",)
    assert name.field.name == "event_name"
    assert name.values == ("page_view", "a:b")


def test_group_by_repeated_and_comma_separated_keep_their_order() -> None:
    query = parse(Report.CONVERSIONS, ("group_by", "currency"), ("group_by", "campaign_id,day"))
    assert [field.name for field in query.group_by] == ["currency", "campaign_id", "day"]
    assert query.group_by[1].kind is FieldKind.CLICK


def test_each_report_offers_only_its_own_fields() -> None:
    assert problem(Report.EVENTS, ("group_by", "campaign_id"))[0] == "group_by"
    assert problem(Report.CONVERSIONS, ("group_by", "event_name"))[0] == "group_by"
    field, message = problem(Report.FUNNEL, ("group_by", "params.step"))
    assert field == "group_by"
    assert "campaign_id" in message


def test_enrichment_fields_are_offered_once_the_table_has_the_column() -> None:
    offered = set(FIELDS[Report.EVENTS])
    for name in ("geo_country", "ua_browser", "ua_device_type"):
        assert (name in offered) == (name in EVENTS.columns)


@pytest.mark.parametrize("raw", ["1", " 7 ", "1000"])
def test_a_limit_is_plain_digits_within_its_bounds(raw: str) -> None:
    assert limit_value(raw, default=10, maximum=1000) == int(raw)


def test_no_limit_is_the_default() -> None:
    assert limit_value(None, default=10, maximum=1000) == 10


@pytest.mark.parametrize(
    "raw", ["0", "1001", "-5", "+5", "1_000", "1e3", "5.0", "", "٣", "x", "9" * 5000]
)
def test_a_limit_that_int_would_take_or_is_out_of_bounds_is_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        limit_value(raw, default=10, maximum=1000)
    assert [(d.field, d.message) for d in refused.value.details] == [
        ("limit", "must be a whole number from 1 to 1000")
    ]
