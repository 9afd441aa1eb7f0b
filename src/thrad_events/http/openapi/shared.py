"""What the operations of the OpenAPI document share: the pieces every module that builds paths
uses (schema references, error answers, query parameters, the answers of a request authenticated
by a key), and what is added to every operation once the paths are built (`complete`): the
answers of the HTTP edge (http/protocol.py, http/routing.py), the servers, the request body
examples and the validate_only parameter of the ingest endpoints."""

from __future__ import annotations

from typing import Any

import msgspec

from thrad_events.schemas import BatchValidationResponse, ValidationResult

REF = "#/components/schemas/{name}"
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
# What reports/query.py reads as a time: an ISO-8601 date, or date and time with an optional
# fraction and offset (UTC without one).
ISO_TIME_PATTERN = (
    r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\s*$"
)


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


def json_content(name: str) -> dict[str, Any]:
    """A JSON body of the schema `name`."""
    return {"application/json": {"schema": ref(name)}}


def error(description: str, *, retry: bool = False) -> dict[str, Any]:
    """An error answer; with `retry`, its Retry-After header."""
    answer: dict[str, Any] = {"description": description, "content": json_content("ErrorResponse")}
    if retry:
        answer["headers"] = dict(RETRY_AFTER)
    return answer


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


# A partner's id (ptn_...) or name: 1 to 128 characters, none of them a control character.
PARTNER_REF_PATTERN = r"^[^\u0000-\u001f\u007f]{1,128}$"
# The partner a read is scoped to, as reports and export take it.
PARTNER_ID = query(
    "partner_id",
    {"type": "string", "pattern": PARTNER_REF_PATTERN},
    "With THRAD_ADMIN_TOKEN: only this partner's rows, by its id or name (no such partner: "
    "422) [default: every partner]. With an API key: its own partner's id only",
)
# The answers of any request authenticated by an API key.
KEY_ERRORS = {
    "401": error("unauthorized: missing, unknown, revoked or expired key"),
    "429": error("rate_limited", retry=True),
    "503": error("unavailable: storage unreachable or saturated", retry=True),
}


def read_errors(forbidden: str) -> dict[str, Any]:
    """The error answers of a read that an API key or the admin token makes (reports, export,
    rejections); `forbidden` says what a key may not read."""
    return {
        **KEY_ERRORS,
        "403": error(forbidden),
        "422": error("validation_error: a parameter is unknown or malformed"),
    }


# Answers any request may get before it reaches its endpoint.
_EDGE = {
    "400": "bad_request: HTTP the server cannot parse",
    "405": "method_not_allowed: the path does not take this method (Allow lists those it does)",
    "408": "request_timeout: the request head or body did not arrive in time",
    "431": "request_header_fields_too_large: headers over 64 KiB in all or over 100 lines",
    "503": "unavailable: too many open connections, or storage unreachable",
}
# And those that carry a body.
_BODY_EDGE = {
    "413": "payload_too_large: body (also once decompressed) over THRAD_MAX_BODY_BYTES",
    "415": "unsupported_encoding: a Content-Encoding other than gzip",
}

SERVERS = [
    {"url": "/", "description": "This server"},
    {"url": "https://events.thrad.ai", "description": "Thrad's production endpoint"},
]

CLICK_ID_EXAMPLE = "11111111-1111-4111-8111-111111111111"
COLLECT_EXAMPLE = {
    "tag_id": "adv_001",
    "event_name": "page_view",
    "event_id": "pv-order-123-step-1",
    "timestamp": 1771879200,
    "page_url": "https://shop.example.com/checkout",
    "params": {"step": "shipping"},
}
CONVERSION_EXAMPLE = {
    "click_id": CLICK_ID_EXAMPLE,
    "conversion_time": "2026-02-19T18:00:00Z",
    "conversion_value": 49.99,
    "currency": "USD",
    "order_id": "order-123",
    "event_type": "purchase_completed",
    "customer_tier": "gold",
}
EXAMPLES = {
    "CollectRequest": COLLECT_EXAMPLE,
    "ConversionRequest": CONVERSION_EXAMPLE,
    "CollectBatchRequest": {
        "events": [COLLECT_EXAMPLE, {"event_name": "impression", "event_id": "imp-1"}]
    },
    "ConversionBatchRequest": {
        "conversions": [
            {**CONVERSION_EXAMPLE, "order_id": "order-124"},
            {**CONVERSION_EXAMPLE, "order_id": "order-125", "conversion_value": 10},
        ]
    },
    "PartnerCreateRequest": {"name": "acme"},
    "KeyCreateRequest": {"partner": "acme", "label": "backend", "rate_limit": 200},
    "KeyUpdateRequest": {"label": "backend-eu", "rate_limit": 500},
    "KeyRotateRequest": {"grace_seconds": 3600},
    "KeyRevokeRequest": {},
    "ClickCreateRequest": {"campaign_id": "cmp_1", "ad_id": "ad_1"},
    "TagCreateRequest": {
        "partner": "acme",
        "tag_id": "acme-shop",
        "origins": ["https://shop.example.com", "https://www.shop.example.com"],
        "daily_cap": 500000,
    },
    "TagUpdateRequest": {"tag_id": "acme-shop", "daily_cap": None},
    "TagChangeRequest": {"origins": ["https://shop.example.com"], "daily_cap": 500000},
}

# The answers of ?validate_only=true, from the Structs the server encodes them with.
_, VALIDATION_SCHEMAS = msgspec.json.schema_components(
    [ValidationResult, BatchValidationResponse], ref_template=REF
)
VALIDATE_ONLY = {
    "name": "validate_only",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "true: check the body and answer 200 with what is wrong with it and what "
    "the server would change; nothing is stored and no dedupe state changes",
}
_VALIDATION_ANSWER = {
    "CollectRequest": "ValidationResult",
    "ConversionRequest": "ValidationResult",
    "CollectBatchRequest": "BatchValidationResponse",
    "ConversionBatchRequest": "BatchValidationResponse",
}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add what every operation shares to `document` (its paths built), and return it."""
    document["servers"] = SERVERS
    document["components"]["schemas"].update(VALIDATION_SCHEMAS)
    done: set[int] = set()  # aliases share their operation objects
    for path, item in document["paths"].items():
        for operation in item.values():
            if id(operation) in done:
                continue
            done.add(id(operation))
            # The browser Tag's endpoints take no validate_only (they answer pages, not people).
            _complete_operation(operation, ingest=not path.startswith("/v1/tag/"))
    return document


def _complete_operation(operation: dict[str, Any], *, ingest: bool) -> None:
    responses = operation["responses"]
    edges = dict(_EDGE)
    body = operation.get("requestBody")
    if body is not None:
        edges.update(_BODY_EDGE)
    for status, description in edges.items():
        responses.setdefault(status, error(description, retry=status == "503"))
    if body is None:
        return
    schema_ref = body["content"]["application/json"]["schema"].get("$ref")
    if schema_ref is None:
        return
    name = schema_ref.rsplit("/", 1)[-1]
    for media in body["content"].values():
        media["example"] = EXAMPLES[name]
    if not ingest or name not in _VALIDATION_ANSWER:
        return
    operation.setdefault("parameters", []).append(VALIDATE_ONLY)
    validation = ref(_VALIDATION_ANSWER[name])
    answer = responses.get("200")
    if answer is None:
        responses["200"] = {
            "description": "With validate_only=true: the validation",
            "content": {"application/json": {"schema": validation}},
        }
    else:
        answer["description"] += "; with validate_only=true: the validation"
        json_media = answer["content"]["application/json"]
        json_media["schema"] = {"anyOf": [json_media["schema"], validation]}
