"""The OpenAPI entries of GET /v1/api/rejections and GET /v1/api/reports/delivery
(http/delivery.py), added to the document that document.py builds."""

from __future__ import annotations

from typing import Any

from thrad_events.http.openapi.shared import query, read_errors, ref
from thrad_events.reports.delivery_query import REJECTIONS_MAX_LIMIT
from thrad_events.store.delivery_reads import GROUPS, REJECTION_FIELDS

_STRING = {"type": "string"}
_COUNT = {"type": "integer", "minimum": 0}
_TIME = "ISO-8601, UTC when no offset; default: the last 7 days"


def delivery_paths(components: dict[str, Any]) -> dict[str, Any]:
    """The two paths, their schemas added to `components`."""
    components["Rejection"] = {
        "type": "object",
        "properties": {
            **{name: _STRING for name in REJECTION_FIELDS},
            "status": {"type": "integer"},
            "details": {
                "type": "array",
                "items": ref("ErrorDetail"),
            },
            "body": {**_STRING, "description": "The first 2 KiB of the body as received"},
        },
    }
    components["DeliveryRow"] = {
        "type": "object",
        "description": "received = stored + duplicate + the rejected counts + rate_limited",
        "properties": {
            "partner_id": _STRING,
            **{name: _STRING for name in GROUPS},
            "received": _COUNT,
            "stored": _COUNT,
            "duplicate": _COUNT,
            "rejected": {"type": "object", "additionalProperties": _COUNT},
            "rate_limited": _COUNT,
        },
    }
    shared = [
        query("since", _STRING, f"Inclusive; {_TIME}"),
        query("until", _STRING, "Exclusive; default: now"),
        query("partner_id", _STRING, "With the admin token: one partner's"),
    ]
    answers = read_errors("forbidden: partner_id of another partner")

    def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    return {
        "/v1/api/rejections": {
            "get": {
                "summary": (
                    "Refused requests kept (400, 404, 408, 413, 415, 422, 431), newest first"
                ),
                "security": [{"bearer": []}],
                "parameters": [
                    *shared,
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": REJECTIONS_MAX_LIMIT},
                        "Most rejections (default 100)",
                    ),
                ],
                "responses": {
                    "200": ok(
                        "Rejections, refusals counted but not kept, and 429s per key and minute",
                        {
                            "type": "object",
                            "properties": {
                                "rejections": {
                                    "type": "array",
                                    "items": ref("Rejection"),
                                },
                                "truncated": {"type": "boolean"},
                                "not_kept": _COUNT,
                                "rate_limited": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    ),
                    **answers,
                },
            }
        },
        "/v1/api/reports/delivery": {
            "get": {
                "summary": "What each partner sent: received, stored, duplicate, rejected, "
                "rate limited",
                "security": [{"bearer": []}],
                "parameters": [
                    *shared,
                    query("group_by", _STRING, "Comma-separated: " + ", ".join(GROUPS)),
                ],
                "responses": {
                    "200": ok(
                        "One row per partner and group",
                        {
                            "type": "object",
                            "properties": {
                                "rows": {
                                    "type": "array",
                                    "items": ref("DeliveryRow"),
                                }
                            },
                        },
                    ),
                    **answers,
                },
            }
        },
    }
