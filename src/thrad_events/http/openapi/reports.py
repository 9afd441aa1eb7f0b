"""The reports' part of the OpenAPI document: GET /v1/api/reports/{events,conversions,funnel},
their parameters (from the report fields and bounds in reports/query.py) and their row shapes."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from thrad_events.http.openapi.shared import (
    ISO_TIME_PATTERN,
    PARTNER_ID,
    REF,
    json_content,
    query,
    read_errors,
    ref,
)
from thrad_events.reports.query import (
    DEFAULT_LIMIT,
    FIELDS,
    MAX_FILTER_VALUE_CHARS,
    MAX_FILTER_VALUES,
    MAX_GROUP_BY,
    MAX_LIMIT,
    WITH_NAMES,
    WITH_PARAMS,
    FieldKind,
    NameKind,
    Report,
    TimeBasis,
)
from thrad_events.schemas import ReportResponse

_GROUP_VALUE = {
    "anyOf": [{"type": "string"}, {"type": "null"}],
    "description": "A group value, keyed by its group_by field; null where the field is absent",
}
_COUNT = {"type": "integer", "minimum": 0}
_REPORT_ROWS = {
    "EventsReportRow": {
        "properties": {"events": {**_COUNT, "description": "Events received in the group"}},
        "required": ["events"],
    },
    "ConversionsReportRow": {
        "properties": {
            "conversions": _COUNT,
            "revenue": {
                "type": "object",
                "additionalProperties": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
                "description": "Exact sum of conversion_value per ISO 4217 currency, as a string",
            },
        },
        "required": ["conversions", "revenue"],
    },
    "FunnelReportRow": {
        "properties": {
            "clicks": {**_COUNT, "description": "Clicks received in the range"},
            "converted_clicks": {**_COUNT, "description": "Of those, clicks with a conversion"},
            "conversions": {**_COUNT, "description": "Conversions of those clicks, to date"},
            "conversion_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "time_to_convert_s": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {p: {"type": "number"} for p in ("p50", "p90", "p99")},
                        "required": ["p50", "p90", "p99"],
                    },
                    {"type": "null"},
                ],
                "description": "Seconds from click to first conversion; null when none converted",
            },
        },
        "required": [
            "clicks",
            "converted_clicks",
            "conversions",
            "conversion_rate",
            "time_to_convert_s",
        ],
    },
}
_REPORTS = {
    "events": (
        "EventsReportRow",
        "Event counts by day, hour, event_name, tag_id, channel, geo_country, ua_browser, "
        "partner_id or params.KEY",
    ),
    "conversions": (
        "ConversionsReportRow",
        "Conversions and exact revenue per currency by day, hour, tag_id, event_type, currency, "
        "channel, partner_id, params.KEY, or the click's campaign_id and ad_id",
    ),
    "funnel": (
        "FunnelReportRow",
        "Clicks received in the range, by campaign_id (or ad_id, tag_id, day, hour), with the "
        "conversions they led to, the conversion rate and time-to-convert percentiles",
    ),
}


def _field_names(report: Report, *, time: bool) -> str:
    """A regular expression matching one field `report` groups (or, without time, filters) by,
    as reports/query.py accepts it."""
    names = [
        re.escape(name)
        for name, field in FIELDS[report].items()
        if time or field.kind not in (FieldKind.DAY, FieldKind.HOUR)
    ]
    if report in WITH_PARAMS:
        # Up to 64 characters in all, which a pattern says only at great length.
        names.append(r"params\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
    return "(?:" + "|".join(names) + ")"


def _report_parameters(report: Report) -> list[dict[str, Any]]:
    group_field = _field_names(report, time=True)
    group_by = {
        "type": "array",
        # Comma-separated names, blanks between commas ignored.
        "items": {
            "type": "string",
            "pattern": rf"^\s*{group_field}?\s*(?:,\s*{group_field}?\s*)*$",
        },
    }
    filter_field = _field_names(report, time=False)
    filters = {
        "type": "array",
        "maxItems": MAX_FILTER_VALUES,
        "items": {
            "type": "string",
            "pattern": rf"^\s*{filter_field}\s*:[\s\S]{{1,{MAX_FILTER_VALUE_CHARS}}}$",
        },
    }
    return [
        query(
            "since",
            {"type": "string", "pattern": ISO_TIME_PATTERN},
            "ISO-8601 date or date-time in the years 1970 to 9999, inclusive, on the "
            "time_basis (UTC when no offset) [default: 7 days before until, not before 1970]",
        ),
        query(
            "until",
            {"type": "string", "pattern": ISO_TIME_PATTERN},
            "ISO-8601 date or date-time in the years 1970 to 9999, exclusive [default: now]",
        ),
        query(
            "include_test",
            {"type": "boolean", "default": False},
            "true: also count the rows sent with test keys (and test clicks)",
        ),
        query(
            "time_basis",
            {
                "type": "string",
                "enum": [basis.value for basis in TimeBasis],
                "default": TimeBasis.EVENT.value,
            },
            "The time since, until, day and hour are on: event (an event's timestamp, a "
            "conversion's conversion_time, the click's time for the funnel) or received "
            "(when the server received the row)",
        ),
        {
            **query(
                "group_by",
                group_by,
                f"At most {MAX_GROUP_BY} fields to group by, repeated or comma-separated; "
                "params.KEY (dots for nested keys, 64 characters at most) groups by a params "
                "value as text",
            ),
            "style": "form",
            "explode": True,
        },
        {
            **query(
                "filter",
                filters,
                "field:value, repeated; values of one field are "
                "alternatives, different fields must all match",
            ),
            "style": "form",
            "explode": True,
        },
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "Most groups answered; `truncated` tells when there were more",
        ),
        PARTNER_ID,
        *(
            [
                query(
                    "names",
                    {"type": "string", "enum": [kind.value for kind in NameKind]},
                    "standard: only Thrad's standard event names (event_name for events, "
                    "event_type for conversions); custom: only the others [default: every name]",
                )
            ]
            if report in WITH_NAMES
            else []
        ),
    ]


def report_paths(components: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/api/reports/*, adding their schemas to `components`."""
    _, schemas = msgspec.json.schema_components([ReportResponse], ref_template=REF)
    components.update(schemas)
    paths: dict[str, Any] = {}
    for report, (row, summary) in _REPORTS.items():
        components[row] = {
            "type": "object",
            **_REPORT_ROWS[row],
            "additionalProperties": _GROUP_VALUE,
        }
        name = f"{report.capitalize()}Report"
        components[name] = {
            "allOf": [
                ref("ReportResponse"),
                {
                    "type": "object",
                    "properties": {"rows": {"type": "array", "items": ref(row)}},
                },
            ]
        }
        paths[f"/v1/api/reports/{report}"] = {
            "get": {
                "summary": summary,
                "description": "A partner's API key reads its own partner's rows; "
                "`Bearer <THRAD_ADMIN_TOKEN>` reads every partner's.",
                "security": [{"bearer": []}],
                "parameters": _report_parameters(Report(report)),
                "responses": {
                    "200": {
                        "description": "One row per group, ordered by the group values",
                        "content": json_content(name),
                    },
                    **read_errors("forbidden: partner_id of another partner"),
                },
            }
        }
    return paths
