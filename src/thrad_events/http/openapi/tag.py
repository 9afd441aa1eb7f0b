"""The browser Tag's part of the OpenAPI document: its script and its two public endpoints (no API
key; the Origin decides). The registry, /v1/admin/tags, is documented with the admin API
(admin.py)."""

from __future__ import annotations

from typing import Any

from thrad_events.http.openapi.shared import error, json_content, ref

_ORIGIN = {
    "name": "Origin",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "The page's origin: one of the tag's registered origins",
}
_PUBLIC_ERRORS = {
    "400": error("invalid_json or missing_field (tag_id is required)"),
    "403": error(
        "origin_not_allowed: no Origin, or not one of the tag's origins, or an unknown tag_id"
    ),
    "413": error("payload_too_large: over THRAD_TAG_MAX_BODY_BYTES"),
    "422": error("validation_error: every problem of the body listed"),
    "429": error("rate_limited: per tag, per client IP, or the tag's daily cap", retry=True),
    "503": error("unavailable", retry=True),
}
_PREFLIGHT = {
    "summary": "CORS preflight",
    "parameters": [_ORIGIN],
    "responses": {
        "204": {"description": "The origin is one some tag lists: Access-Control-Allow-*"},
        "403": error("origin_not_allowed"),
        "429": error("rate_limited: per client IP", retry=True),
    },
}


def _text_body(schema: str, description: str) -> dict[str, Any]:
    # sendBeacon sends text/plain: the same JSON either way.
    media = {"schema": ref(schema)}
    return {
        "required": True,
        "description": description,
        "content": {"text/plain": media, "application/json": media},
    }


def tag_paths() -> dict[str, Any]:
    return {
        "/v1/tag.js": {
            "get": {
                "summary": "The browser Tag script",
                "responses": {
                    "200": {
                        "description": "application/javascript, with ETag and Cache-Control",
                        "content": {"application/javascript": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                },
            }
        },
        "/v1/tag/collect": {
            "post": {
                "summary": "An event from a page carrying the browser Tag (no API key)",
                "parameters": [_ORIGIN],
                "requestBody": _text_body(
                    "CollectRequest", "The collect body; tag_id is required and registered"
                ),
                "responses": {"204": {"description": "Stored (or a duplicate)"}, **_PUBLIC_ERRORS},
            },
            "options": _PREFLIGHT,
        },
        "/v1/tag/conversion": {
            "post": {
                "summary": "A conversion from a page, proved by its click's signature",
                "parameters": [_ORIGIN],
                "requestBody": _text_body(
                    "ConversionRequest",
                    "The conversion body plus thrad_exp and thrad_sig from the click's landing URL",
                ),
                "responses": {
                    "200": {
                        "description": "ok or duplicate",
                        "content": json_content("ConversionResponse"),
                    },
                    **_PUBLIC_ERRORS,
                    "403": error(
                        "origin_not_allowed, or bad_click_signature: thrad_sig does "
                        "not verify for the click or thrad_exp has passed"
                    ),
                    "404": error("click_not_found"),
                },
            },
            "options": _PREFLIGHT,
        },
    }
