"""The OpenAPI document, generated from the same msgspec Structs that validate requests."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.types import Receive, Scope

from thrad_events.errors import Outcome
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.openapi.admin import admin_paths
from thrad_events.http.openapi.delivery import delivery_paths
from thrad_events.http.openapi.export import export_paths
from thrad_events.http.openapi.reports import report_paths
from thrad_events.http.openapi.shared import (
    KEY_ERRORS,
    REF,
    complete,
    error,
    json_content,
)
from thrad_events.http.openapi.tag import tag_paths
from thrad_events.ingest.clicklinks import LINK_FIELDS, MAX_FIELD_CHARS, MAX_URL_CHARS
from thrad_events.ingest.normalize import DEFAULT_EVENT_TYPE, SERVER_CHANNEL
from thrad_events.ingest.validate import CURRENCIES
from thrad_events.money import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS
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
)

_COMMON_ERRORS = {
    "400": error("invalid_json or missing_field"),
    "413": error("payload_too_large"),
    "422": error("validation_error: a field has the wrong type or format"),
    **KEY_ERRORS,
}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": json_content(name)}


def build_openapi() -> dict[str, Any]:
    """The whole document: the paths, and what every operation shares (shared.py)."""
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
            **report_paths(components),
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
