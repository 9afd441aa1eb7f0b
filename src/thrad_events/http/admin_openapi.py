"""The admin API's part of the OpenAPI document, from the Structs that validate its bodies."""

from __future__ import annotations

from typing import Any

import msgspec

from thrad_events.auth import admin
from thrad_events.http.admin_request import MAX_ADMIN_BODY_BYTES
from thrad_events.schemas import (
    ApiKeyList,
    AuditList,
    KeyCreateRequest,
    KeyRotateRequest,
    KeyUpdateRequest,
    NewApiKey,
    Partner,
    PartnerCreateRequest,
    PartnerList,
    Tag,
    TagChangeRequest,
    TagCreateRequest,
    TagList,
    TagUpdateRequest,
)

_REF = "#/components/schemas/{name}"
_ERROR = {"application/json": {"schema": {"$ref": _REF.format(name="ErrorResponse")}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
_AUTH_ERRORS = {
    "401": _error("unauthorized: Authorization missing, malformed or not the admin token"),
    "403": _error(
        "forbidden: a partner's API key, or the server has no THRAD_ADMIN_TOKEN (admin API off)"
    ),
    "503": {**_error("unavailable: storage unreachable"), "headers": _RETRY_AFTER},
}
_BODY_ERRORS = {
    "400": _error("invalid_json or missing_field"),
    "413": _error(f"payload_too_large: over {MAX_ADMIN_BODY_BYTES} bytes"),
    "422": _error("validation_error: unknown field, wrong type, out of bounds; every one listed"),
}
_QUERY_ERRORS = {"422": _error("validation_error: unknown, repeated or malformed parameter")}
_KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TAG_ID = {
    "name": "tag_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The tag's id; one holding a `/` is changed with PATCH /v1/admin/tags",
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_LIMIT = _query(
    "limit",
    {
        "type": "integer",
        "minimum": 1,
        "maximum": admin.MAX_LIST_LIMIT,
        "default": admin.DEFAULT_LIST_LIMIT,
    },
    "At most this many items; `truncated` tells when there were more",
)


def _json(name: str, status: str, description: str) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}
    return {status: {"description": description, "content": content}}


def _operation(
    summary: str,
    answer: dict[str, Any],
    *,
    body: str | None = None,
    body_required: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["admin"],
        "security": [{"bearer": []}],
        "parameters": parameters or [],
        "responses": {**answer, **_AUTH_ERRORS, **(errors or {})},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": _REF.format(name=body)}}},
        }
        operation["responses"].update(_BODY_ERRORS)
    return operation


def admin_paths(components: dict[str, Any]) -> dict[str, Any]:
    """/v1/admin/*, adding their schemas to `components`."""
    _, schemas = msgspec.json.schema_components(
        [
            PartnerCreateRequest,
            KeyCreateRequest,
            KeyUpdateRequest,
            KeyRotateRequest,
            Partner,
            PartnerList,
            ApiKeyList,
            NewApiKey,
            AuditList,
            TagCreateRequest,
            TagChangeRequest,
            TagUpdateRequest,
            Tag,
            TagList,
        ],
        ref_template=_REF,
    )
    components.update(schemas)
    # What auth/admin.py checks beyond the Structs' types.
    for name in ("KeyCreateRequest", "KeyUpdateRequest"):
        expiry = components[name]["properties"]["expires_at"]["anyOf"][0]
        expiry["format"] = "date-time"
    conflict = {"409": _error("conflict: the key is revoked (or expired, to rotate)")}
    not_found = {"404": _error("not_found: no such key")}
    return {
        **_tag_paths(),
        "/v1/admin/partners": {
            "get": _operation(
                "List partners by name",
                _json("PartnerList", "200", "Partners"),
                parameters=[_LIMIT],
                errors=_QUERY_ERRORS,
            ),
            "post": _operation(
                "Create a partner",
                _json("Partner", "201", "Created"),
                body="PartnerCreateRequest",
                errors={"409": _error("conflict: a partner has that name")},
            ),
        },
        "/v1/admin/keys": {
            "get": _operation(
                "List API keys (never their secrets), oldest first",
                _json("ApiKeyList", "200", "Keys"),
                parameters=[
                    _query("partner", {"type": "string"}, "Only this partner's (id or name)"),
                    _LIMIT,
                ],
                errors=_QUERY_ERRORS,
            ),
            "post": _operation(
                "Create an API key; its secret is in this answer only",
                _json("NewApiKey", "201", "Created; `api_key` is the secret, shown once"),
                body="KeyCreateRequest",
            ),
        },
        "/v1/admin/keys/{key_id}": {
            "patch": _operation(
                "Change a key's label, rate_limit or expires_at",
                _json("ApiKey", "200", "The key as changed"),
                body="KeyUpdateRequest",
                parameters=[_KEY_ID],
                errors={**not_found, **conflict},
            ),
        },
        "/v1/admin/keys/{key_id}/revoke": {
            "post": _operation(
                "Revoke a key: refused on every node within 5 seconds",
                _json("ApiKey", "200", "The key, revoked (also when it already was)"),
                parameters=[_KEY_ID],
                errors={**not_found, **_BODY_ERRORS},
            ),
        },
        "/v1/admin/keys/{key_id}/rotate": {
            "post": _operation(
                "Replace a key by a new one; the old one works grace_seconds more",
                _json("NewApiKey", "201", "The new key (secret shown once) and rotated_from"),
                body="KeyRotateRequest",
                body_required=False,
                parameters=[_KEY_ID],
                errors={**not_found, **conflict},
            ),
        },
        "/v1/admin/audit": {
            "get": _operation(
                "The audit trail: every operator action, over HTTP or the CLI, newest first",
                _json("AuditList", "200", "Entries"),
                parameters=[
                    _query(
                        "since",
                        {"type": "string", "format": "date-time"},
                        "Only actions at or after this ISO-8601 time (UTC when no offset)",
                    ),
                    _LIMIT,
                ],
                errors=_QUERY_ERRORS,
            ),
        },
    }


def _tag_paths() -> dict[str, Any]:
    """/v1/admin/tags: the browser Tag registry."""
    not_found = {"404": _error("not_found: no such tag")}
    return {
        "/v1/admin/tags": {
            "get": _operation(
                "List the browser Tags by tag_id",
                _json("TagList", "200", "Tags"),
                parameters=[
                    _query("partner", {"type": "string"}, "Only this partner's (id or name)"),
                    _LIMIT,
                ],
                errors=_QUERY_ERRORS,
            ),
            "post": _operation(
                "Register a browser Tag: its partner and the origins allowed to send for it",
                _json("Tag", "201", "Registered"),
                body="TagCreateRequest",
                errors={"409": _error("conflict: the tag_id is taken")},
            ),
            "patch": _operation(
                "Change a browser Tag (named in the body): its origins or daily cap",
                _json("Tag", "200", "The tag as changed"),
                body="TagUpdateRequest",
                errors=not_found,
            ),
        },
        "/v1/admin/tags/{tag_id}": {
            "patch": _operation(
                "Change a browser Tag's origins or daily cap",
                _json("Tag", "200", "The tag as changed"),
                body="TagChangeRequest",
                parameters=[_TAG_ID],
                errors=not_found,
            ),
        },
    }
