"""The reports' SQL: user input travels only as bound parameters, never as SQL text."""

from __future__ import annotations

from datetime import UTC, datetime

from thrad_events.reports import dialects
from thrad_events.reports import sql as report_sql
from thrad_events.reports.query import (
    ConversionsQuery,
    EventsQuery,
    FunnelQuery,
    Report,
    parse_report_query,
)

HOSTILE = "x' OR 1=1; DROP TABLE events; --"


def test_filter_values_params_keys_times_and_partner_are_bound_not_written_into_sql() -> None:
    query = parse_report_query(
        Report.EVENTS,
        [
            ("since", "2026-02-18T00:00:00Z"),
            ("group_by", "params.step,tag_id"),
            ("filter", f"params.extra.tier:{HOSTILE}"),
            ("filter", f"event_name:{HOSTILE}"),
        ],
        partner_id=HOSTILE,
        now=datetime(2026, 2, 20, tzinfo=UTC),
    )
    assert isinstance(query, EventsQuery)
    prepared = report_sql.events_report(query, dialects.SQLITE)
    for text in (HOSTILE, "step", "extra", "2026-02-18"):
        assert text not in prepared.sql
    assert prepared.sql.count("?") == len(prepared.args)
    assert '$."extra"."tier"' in prepared.args
    assert prepared.args.count(HOSTILE) == 3


def test_every_report_binds_as_many_values_as_it_has_placeholders() -> None:
    now = datetime(2026, 2, 20, tzinfo=UTC)
    for partner in ("ptn_a", None):
        events = parse_report_query(
            Report.EVENTS, [("group_by", "day,params.a")], partner_id=partner, now=now
        )
        conversions = parse_report_query(
            Report.CONVERSIONS,
            [("group_by", "campaign_id,params.b"), ("filter", "ad_id:x")],
            partner_id=partner,
            now=now,
        )
        funnel = parse_report_query(
            Report.FUNNEL, [("filter", "tag_id:t")], partner_id=partner, now=now
        )
        assert isinstance(events, EventsQuery)
        assert isinstance(conversions, ConversionsQuery)
        assert isinstance(funnel, FunnelQuery)
        for prepared in (
            report_sql.events_report(events, dialects.SQLITE),
            report_sql.conversions_report(conversions, dialects.SQLITE),
            report_sql.funnel_report(funnel, dialects.SQLITE),
        ):
            assert prepared.sql.count("?") == len(prepared.args)


def test_the_event_time_range_is_on_the_bare_column_in_whole_seconds() -> None:
    # A bare column against bound values is what lets the (partner_id, time) indexes serve it;
    # an event's timestamp is whole seconds, so a fractional bound rounds up for both ends.
    events = parse_report_query(
        Report.EVENTS,
        [("since", "2026-02-18T00:00:00.5Z"), ("until", "2026-02-19T00:00:00Z")],
        partner_id="ptn_a",
        now=datetime(2026, 2, 20, tzinfo=UTC),
    )
    assert isinstance(events, EventsQuery)
    prepared = report_sql.events_report(events, dialects.SQLITE)
    assert 'e."timestamp" >= ? AND e."timestamp" < ?' in prepared.sql
    assert prepared.args[:2] == (1771372801, 1771459200)
    conversions = parse_report_query(
        Report.CONVERSIONS,
        [("since", "2026-02-18T00:00:00Z"), ("group_by", "day")],
        partner_id="ptn_a",
        now=datetime(2026, 2, 20, tzinfo=UTC),
    )
    assert isinstance(conversions, ConversionsQuery)
    prepared = report_sql.conversions_report(conversions, dialects.SQLITE)
    assert "c.conversion_time >= ? AND c.conversion_time < ?" in prepared.sql
    assert "substr(c.conversion_time, 1, 10)" in prepared.sql
    assert "received_at" not in prepared.sql
