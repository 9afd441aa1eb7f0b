"""The admin API's part of the OpenAPI document, from the Structs that validate its bodies."""

from __future__ import annotations

from typing import Any

import msgspec

from thrad_events.auth import admin
from thrad_events.http.admin_request import MAX_ADMIN_BODY_BYTES
from thrad_events.http.openapi.shared import REF, error, json_content, query
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

_AUTH_ERRORS = {
    "401": error("unauthorized: Authorization missing, malformed or not the admin token"),
    "403": error(
        "forbidden: a partner's API key, or the server has no THRAD_ADMIN_TOKEN (admin API off)"
    ),
    "503": error("unavailable: storage unreachable", retry=True),
}
_BODY_ERRORS = {
    "400": error("invalid_json or missing_field"),
    "413": error(f"payload_too_large: over {MAX_ADMIN_BODY_BYTES} bytes"),
    "422": error("validation_error: unknown field, wrong type, out of bounds; every one listed"),
}
_QUERY_ERRORS = {"422": error("validation_error: unknown, repeated or malformed parameter")}
_KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TAG_ID = {
    "name": "tag_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The tag's id; one holding a `/` is changed with PATCH /v1/admin/tags",
}
_LIMIT = query(
    "limit",
    {
        "type": "integer",
        "minimum": 1,
        "maximum": admin.MAX_LIST_LIMIT,
        "default": admin.DEFAULT_LIST_LIMIT,
    },
    "At most this many items; `truncated` tells when there were more",
)
_PARTNER_FILTER = query("partner", {"type": "string"}, "Only this partner's (id or name)")


def _json(name: str, status: str, description: str) -> dict[str, Any]:
    return {status: {"description": description, "content": json_content(name)}}


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
            "content": json_content(body),
        }
        operation["responses"].update(_BODY_ERRORS)
    return operation


def _list(summary: str, schema: str, description: str, *filters: dict[str, Any]) -> dict[str, Any]:
    """A GET of a list: its `filters`, then `limit`."""
    return _operation(
        summary,
        _json(schema, "200", description),
        parameters=[*filters, _LIMIT],
        errors=_QUERY_ERRORS,
    )


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
        ref_template=REF,
    )
    components.update(schemas)
    # What auth/admin.py checks beyond the Structs' types.
    for name in ("KeyCreateRequest", "KeyUpdateRequest"):
        expiry = components[name]["properties"]["expires_at"]["anyOf"][0]
        expiry["format"] = "date-time"
    conflict = {"409": error("conflict: the key is revoked (or expired, to rotate)")}
    not_found = {"404": error("not_found: no such key")}
    return {
        **_tag_paths(),
        "/v1/admin/partners": {
            "get": _list("List partners by name", "PartnerList", "Partners"),
            "post": _operation(
                "Create a partner",
                _json("Partner", "201", "Created"),
                body="PartnerCreateRequest",
                errors={"409": error("conflict: a partner has that name")},
            ),
        },
        "/v1/admin/keys": {
            "get": _list(
                "List API keys (never their secrets), oldest first",
                "ApiKeyList",
                "Keys",
                _PARTNER_FILTER,
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
            "get": _list(
                "The audit trail: every operator action, over HTTP or the CLI, newest first",
                "AuditList",
                "Entries",
                query(
                    "since",
                    {"type": "string", "format": "date-time"},
                    "Only actions at or after this ISO-8601 time (UTC when no offset)",
                ),
            ),
        },
    }


def _tag_paths() -> dict[str, Any]:
    """/v1/admin/tags: the browser Tag registry."""
    not_found = {"404": error("not_found: no such tag")}
    return {
        "/v1/admin/tags": {
            "get": _list("List the browser Tags by tag_id", "TagList", "Tags", _PARTNER_FILTER),
            "post": _operation(
                "Register a browser Tag: its partner and the origins allowed to send for it",
                _json("Tag", "201", "Registered"),
                body="TagCreateRequest",
                errors={"409": error("conflict: the tag_id is taken")},
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
