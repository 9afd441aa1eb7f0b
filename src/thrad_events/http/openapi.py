"""The OpenAPI document, generated from the same msgspec Structs that validate requests."""

from __future__ import annotations

from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from thrad_events.schemas import (
    BatchResponse,
    CollectBatchRequest,
    CollectRequest,
    ConversionBatchRequest,
    ConversionRequest,
    ConversionResponse,
    ErrorResponse,
    HealthResponse,
)

_REF = "#/components/schemas/{name}"


def _error(description: str, extra_headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name="ErrorResponse")}}},
    }
    if extra_headers:
        answer["headers"] = extra_headers
    return answer


_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
_COMMON_ERRORS = {
    "400": _error("invalid_json or missing_field"),
    "401": _error("unauthorized: missing, unknown, revoked or expired key"),
    "413": _error("payload_too_large"),
    "422": _error("validation_error: a field has the wrong type or format"),
    "429": _error("rate_limited", _RETRY_AFTER),
    "503": _error("unavailable: storage unreachable or saturated", _RETRY_AFTER),
}


def _json_body(name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name=name)}}},
    }


def build_openapi() -> dict[str, Any]:
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
        ],
        ref_template=_REF,
    )
    # The wire type of conversion_value is a JSON number, decoded exactly as a decimal.
    components["ConversionRequest"]["properties"]["conversion_value"] = {
        "type": "number",
        "description": "Conversion amount; stored exactly as the digits sent",
    }
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
                }
            ],
            "requestBody": _json_body("ConversionRequest"),
            "responses": {
                "200": {
                    "description": "ok, or duplicate when already stored",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": _REF.format(name="ConversionResponse")}
                        }
                    },
                },
                "404": _error("click_not_found"),
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
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(name="BatchResponse")}
                            }
                        },
                    },
                    **_COMMON_ERRORS,
                },
            }
        }

    collect_batch = batch("Report up to 500 events at once", "CollectBatchRequest")
    conversion_batch = batch("Report up to 500 conversions at once", "ConversionBatchRequest")
    health = {
        "description": "Status",
        "content": {"application/json": {"schema": {"$ref": _REF.format(name="HealthResponse")}}},
    }
    link_params = [
        {
            "name": name,
            "in": "query",
            "required": name in ("url", "sig"),
            "schema": {"type": "string"},
        }
        for name in ("url", "tag_id", "campaign_id", "ad_id", "bid_id", "impression_id", "sig")
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
                        "400": _error("bad_click_link: unsigned, tampered or malformed link"),
                        "503": _error("unavailable", _RETRY_AFTER),
                    },
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": health}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: storage answers",
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


def openapi_endpoint() -> Any:
    document = msgspec.json.encode(build_openapi())

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return openapi


_DOCS_PAGE = (resources.files("thrad_events.http") / "docs.html").read_text()


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS_PAGE)
