"""CLI report output: the endpoint's JSON, CSV with nested values in columns, a rich table."""

from __future__ import annotations

import io
import json
from typing import Any, Literal

from thrad_events.reports.render import (
    flatten,
    write_csv,
    write_csv_rows,
    write_json,
    write_table,
)
from thrad_events.schemas import ReportResponse


def response(
    report: Literal["events", "conversions", "funnel"],
    group_by: list[str],
    rows: list[dict[str, Any]],
) -> ReportResponse:
    return ReportResponse(
        report=report,
        since="2026-02-18T00:00:00Z",
        until="2026-02-20T00:00:00Z",
        time_basis="event",
        partner_id=None,
        group_by=group_by,
        filters=[],
        rows=rows,
        truncated=False,
    )


CONVERSIONS = response(
    "conversions",
    ["day"],
    [
        {"day": "2026-02-18", "conversions": 2, "revenue": {"USD": "0.3"}},
        {"day": "2026-02-19", "conversions": 2, "revenue": {"EUR": "49.99", "USD": "100"}},
    ],
)


def test_flatten_puts_groups_first_then_metrics_with_each_currency_a_column() -> None:
    columns, rows = flatten(CONVERSIONS)
    assert columns == ["day", "conversions", "revenue.EUR", "revenue.USD"]
    assert rows[0] == {"day": "2026-02-18", "conversions": 2, "revenue.USD": "0.3"}


def test_flatten_spreads_a_null_time_to_convert_over_its_columns() -> None:
    funnel = response(
        "funnel",
        ["campaign_id"],
        [
            {
                "campaign_id": None,
                "clicks": 1,
                "converted_clicks": 0,
                "conversions": 0,
                "conversion_rate": 0.0,
                "time_to_convert_s": None,
            }
        ],
    )
    columns, rows = flatten(funnel)
    assert columns == [
        "campaign_id",
        "clicks",
        "converted_clicks",
        "conversions",
        "conversion_rate",
        "time_to_convert_s.p50",
        "time_to_convert_s.p90",
        "time_to_convert_s.p99",
    ]
    assert rows[0]["time_to_convert_s.p99"] is None


def test_csv_has_one_line_per_group_and_empty_cells_for_absent_values() -> None:
    out = io.StringIO()
    write_csv(CONVERSIONS, out)
    assert out.getvalue().splitlines() == [
        "day,conversions,revenue.EUR,revenue.USD",
        "2026-02-18,2,,0.3",
        "2026-02-19,2,49.99,100",
    ]


def test_csv_of_no_rows_still_has_the_header() -> None:
    out = io.StringIO()
    write_csv(response("events", ["event_name"], []), out)
    assert out.getvalue() == "event_name,events\n"


def test_json_is_the_http_answer() -> None:
    out = io.StringIO()
    write_json(CONVERSIONS, out)
    assert json.loads(out.getvalue())["rows"][1]["revenue"] == {"EUR": "49.99", "USD": "100"}


def test_table_shows_every_value_even_piped() -> None:
    out = io.StringIO()
    write_table(CONVERSIONS, out)
    text = out.getvalue()
    for value in ("revenue.EUR", "2026-02-19", "49.99", "100", "0.3", "all partners"):
        assert value in text


HOSTILE = response(
    "events",
    ["event_name"],
    [
        {"event_name": "\x1b[31mred\x1b[0m", "events": 1},
        {"event_name": "[bold red]x[/]", "events": 2},
        {"event_name": "=1+2", "events": 3},
    ],
)


def test_a_table_shows_client_text_literally_never_as_escapes_or_markup() -> None:
    out = io.StringIO()
    write_table(HOSTILE, out)
    printed = out.getvalue()
    assert "\x1b" not in printed
    assert "\\x1b[31mred\\x1b[0m" in printed
    assert "[bold red]x[/]" in printed


def test_csv_cells_never_start_a_formula_and_json_stays_exact() -> None:
    out = io.StringIO()
    write_csv(HOSTILE, out)
    assert "'=1+2,3" in out.getvalue().splitlines()
    exact = io.StringIO()
    write_json(HOSTILE, exact)
    assert [row["event_name"] for row in json.loads(exact.getvalue())["rows"]] == [
        "\x1b[31mred\x1b[0m",
        "[bold red]x[/]",
        "=1+2",
    ]


def test_csv_rows_keep_only_their_columns_and_never_start_a_formula() -> None:
    """The delivery report's CSV: its nested `rejected` spread into columns of their own and
    left out whole; a partner's text is formula-safe, numbers stay numbers."""
    out = io.StringIO()
    rows = [{"route": "=cmd|' /C calc'!A0", "rejected": {"x": 1}, "rejected.x": 1, "stored": -2}]
    write_csv_rows(("route", "rejected.x", "stored"), rows, out)
    assert out.getvalue().splitlines() == [
        "route,rejected.x,stored",
        "'=cmd|' /C calc'!A0,1,-2",
    ]
