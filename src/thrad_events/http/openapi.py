"""The OpenAPI document, generated from the same msgspec Structs that validate requests."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.types import Receive, Scope

from thrad_events.errors import Outcome
from thrad_events.http.admin_openapi import admin_paths
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.openapi_delivery import delivery_paths
from thrad_events.http.openapi_export import export_paths
from thrad_events.http.openapi_shared import (
    ISO_TIME_PATTERN,
    KEY_ERRORS,
    PARTNER_ID,
    REF,
    complete,
    error,
    json_content,
    query,
    read_errors,
    ref,
)
from thrad_events.http.openapi_tag import tag_paths
from thrad_events.ingest.clicklinks import LINK_FIELDS, MAX_FIELD_CHARS, MAX_URL_CHARS
from thrad_events.ingest.normalize import DEFAULT_EVENT_TYPE, SERVER_CHANNEL
from thrad_events.ingest.validate import CURRENCIES
from thrad_events.money import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS
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
from thrad_events.schemas import (
    BatchResponse,
    ClickCreateRequest,
    CollectBatchRequest,
    CollectRequest,
    ConversionBatchRequest,
    ConversionRequest,
    ConversionResponse,
    CreatedClick,
    ErrorResponse,
    HealthResponse,
    ReportResponse,
)

_COMMON_ERRORS = {
    "400": error("invalid_json or missing_field"),
    "413": error("payload_too_large"),
    "422": error("validation_error: a field has the wrong type or format"),
    **KEY_ERRORS,
}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": json_content(name)}


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


def _report_paths(components: dict[str, Any]) -> dict[str, Any]:
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


def build_openapi() -> dict[str, Any]:
    """The whole document: the paths, and what every operation shares (openapi_shared.py)."""
    return complete(_paths_document())


def _paths_document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [
            CollectRequest,
            ConversionRequest,
            ConversionResponse,
            ErrorResponse,
            HealthResponse,
            CollectBatchRequest,
            ConversionBatchRequest,
            BatchResponse,
            ClickCreateRequest,
            CreatedClick,
        ],
        ref_template=REF,
    )
    # The wire type of conversion_value is a JSON number, decoded exactly as a decimal.
    conversion_fields = components["ConversionRequest"]["properties"]
    conversion_fields["conversion_value"] = {
        "type": "number",
        "exclusiveMinimum": -(10**MAX_INTEGER_DIGITS),
        "exclusiveMaximum": 10**MAX_INTEGER_DIGITS,
        "description": "Conversion amount, at most "
        f"{MAX_FRACTION_DIGITS} digits after the decimal point; stored exactly as the digits "
        "sent and exported as a string in plain notation",
    }
    # What validate.py checks beyond the Structs' types, so that the document is the contract.
    conversion_fields["conversion_time"]["format"] = "date-time"
    conversion_fields["currency"] = {
        "type": "string",
        "pattern": "^[A-Za-z]{3}$",
        "description": "ISO 4217 code in any case (usd is USD), stored upper-case; one of "
        + ", ".join(sorted(CURRENCIES)),
    }
    # What the server stores when a field is omitted (ingest/normalize.py).
    conversion_fields["event_type"]["default"] = DEFAULT_EVENT_TYPE
    conversion_fields["channel"]["default"] = SERVER_CHANNEL
    collect_channel = components["CollectRequest"]["properties"]["channel"]
    collect_channel["default"] = SERVER_CHANNEL
    collect_channel["description"] = f"Ignored: collect always stores {SERVER_CHANNEL!r}"
    for body in ("CollectRequest", "ConversionRequest"):
        client_ip = components[body]["properties"]["client_ip"]["anyOf"][0]
        client_ip["anyOf"] = [{"format": "ipv4"}, {"format": "ipv6"}]
    # view_time_ms takes a float only without a fraction (validate.whole_view_time): JSON
    # Schema's integer is exactly that, 1007.0 included.
    view_time = components["CollectRequest"]["properties"]["view_time_ms"]
    view_time["anyOf"] = [
        {**view_time["anyOf"][0], "description": "View time in whole milliseconds"},
        {"type": "null"},
    ]
    collect = {
        "post": {
            "summary": "Report a server-side event",
            "security": [{"bearer": []}],
            "requestBody": _json_body("CollectRequest"),
            "responses": {"204": {"description": "Stored (or an exact repeat)"}, **_COMMON_ERRORS},
        }
    }
    conversion = {
        "post": {
            "summary": "Report a conversion tied to a Thrad click_id",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 256},
                    "description": "Makes a retry exact: a second conversion of the partner "
                    "with the same key is answered duplicate and not stored (without it, "
                    "event_id is the key)",
                }
            ],
            "requestBody": _json_body("ConversionRequest"),
            "responses": {
                "200": {
                    "description": "ok, or duplicate when already stored",
                    "content": json_content("ConversionResponse"),
                },
                "404": error("click_not_found"),
                **_COMMON_ERRORS,
            },
        }
    }

    def batch(summary: str, body: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "security": [{"bearer": []}],
                "requestBody": _json_body(body),
                "responses": {
                    "200": {
                        "description": "One result per item, in order, and the totals",
                        "content": json_content("BatchResponse"),
                    },
                    **_COMMON_ERRORS,
                },
            }
        }

    collect_batch = batch("Report up to 500 events at once", "CollectBatchRequest")
    conversion_batch = batch("Report up to 500 conversions at once", "ConversionBatchRequest")
    health = {
        "description": "Status",
        "content": json_content("HealthResponse"),
    }
    # What ingest/clicklinks.py verify_link checks; the signature is HMAC-SHA256 in hex.
    link_schemas: dict[str, dict[str, Any]] = {
        name: {"type": "string", "maxLength": MAX_FIELD_CHARS} for name in LINK_FIELDS
    }
    link_schemas["url"] = {
        "type": "string",
        "maxLength": MAX_URL_CHARS,
        "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x1f\\x7f]+$",
        "description": "Landing URL: absolute http(s), no control characters",
    }
    link_schemas["sig"] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    link_params = [
        {"name": name, "in": "query", "required": name in ("url", "sig"), "schema": schema}
        for name, schema in link_schemas.items()
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Thrad Events API", "version": "1"},
        "paths": {
            "/v1/api/collect": collect,
            "/api/collect": collect,
            "/v1/api/collect/batch": collect_batch,
            "/api/collect/batch": collect_batch,
            "/v1/api/conversion": conversion,
            "/v1/api/conversion/batch": conversion_batch,
            "/api/conversion/batch": conversion_batch,
            "/api/conversion": conversion,
            "/v1/click": {
                "get": {
                    "summary": "Follow a signed click link: store the click, redirect",
                    "parameters": link_params,
                    "responses": {
                        "302": {"description": "Redirect to the landing URL with thrad_click_id"},
                        "400": error("bad_click_link: unsigned, tampered or malformed link"),
                        "503": error("unavailable", retry=True),
                    },
                }
            },
            "/v1/api/test/clicks": {
                "post": {
                    "summary": "Create a test click (test keys only), to try a conversion",
                    "description": "Stores a click as the click redirect would and answers what "
                    "its landing page would receive: click_id, thrad_exp and thrad_sig. Only a "
                    "test key (thr_test_...) may; rows naming the click are test rows.",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": False,
                        "content": json_content("ClickCreateRequest"),
                    },
                    "responses": {
                        "201": {
                            "description": "The click",
                            "content": json_content("CreatedClick"),
                        },
                        **_COMMON_ERRORS,
                        "403": error("forbidden: a live key; only test keys create test clicks"),
                    },
                }
            },
            "/v1/api/debug/stream": {
                "get": {
                    "summary": "The event debugger's live feed (server-sent events)",
                    "description": "Each request of the key's partner (every partner's with "
                    "THRAD_ADMIN_TOKEN) as it is answered: `event: request` with one JSON object "
                    "(time, route, request_id, status, outcome ok/duplicate/rejected/partial/"
                    "failed, errors, the stored row with its enrichment); `event: hello` first, "
                    "`event: dropped` with `missed` when a slow reader lost events, `event: bye` "
                    "when the server stops, and a `: heartbeat` comment line every "
                    "THRAD_DEBUG_HEARTBEAT_S. The page at /debugger reads it.",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "text/event-stream, open until the client leaves",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "401": KEY_ERRORS["401"],
                        "429": error("rate_limited: too many open streams", retry=True),
                        "503": error("unavailable: the server is stopping", retry=True),
                    },
                }
            },
            **_report_paths(components),
            **admin_paths(components),
            **tag_paths(),
            **export_paths(),
            **delivery_paths(components),
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": health}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: storage, and Redis when configured, answer",
                    "responses": {"200": health, "503": health},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_handle() -> Handle:
    answer = (
        Outcome.SERVED,
        Answer(200, msgspec.json.encode(build_openapi()), [JSON_TYPE]),
    )

    async def openapi(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        return answer

    return openapi
