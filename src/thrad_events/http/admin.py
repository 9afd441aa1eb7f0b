"""The admin API under /v1/admin/: partners, API keys, browser Tags and the audit trail.

Each endpoint is built from http/admin_request.py (the admin token's check, the body read into a
Struct with every problem listed, the query's checks, the store call on a worker thread, the
answer); the actions live in auth/admin.py and auth/tags.py, each written with its audit entry in
one transaction. The Tag registry's endpoints are in http/admin_tags.py and are routed from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope

from thrad_events.auth import admin
from thrad_events.errors import NotFound, Outcome, ValidationFailed
from thrad_events.http.admin_request import (
    AdminAccess,
    AdminHandle,
    admin_answer,
    admin_body,
    admin_handle,
    admin_query,
    blocking,
    list_limit,
    partner_list_query,
    text_format,
)
from thrad_events.http.admin_tags import tag_routes
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer
from thrad_events.http.routing import Route, get, patch, post
from thrad_events.ingest.problems import Format
from thrad_events.instants import utcnow
from thrad_events.schemas import (
    ApiKey,
    ApiKeyList,
    AuditEntry,
    AuditList,
    KeyCreateRequest,
    KeyRevokeRequest,
    KeyRotateRequest,
    KeyUpdateRequest,
    NewApiKey,
    Partner,
    PartnerCreateRequest,
    PartnerList,
)
from thrad_events.store.records import ApiKeyRecord

__all__ = ["AdminAccess", "admin_routes", "api_key"]

# Key ids are `key_` and 16 hex digits; anything else cannot name a key.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _key_id(scope: Scope) -> str:
    key_id: str = scope["path_params"]["key_id"]
    if _KEY_ID.fullmatch(key_id) is None:
        raise NotFound("no such key")
    return key_id


def api_key(record: ApiKeyRecord, now: datetime) -> ApiKey:
    return ApiKey(
        key_id=record.key_id,
        partner_id=record.partner_id,
        label=record.label,
        key_prefix=record.key_prefix,
        status=record.status(now),  # type: ignore[arg-type]
        test=record.test,
        rate_limit=record.rate_limit,
        expires_at=record.expires_at,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        last_used_at=record.last_used_at,
    )


def _new_key(created: admin.CreatedKey, now: datetime, **extra: Any) -> NewApiKey:
    shown = api_key(created.record, now)
    fields = {name: getattr(shown, name) for name in ApiKey.__struct_fields__}
    return NewApiKey(**fields, api_key=created.api_key, **extra)


def _expiry(value: str) -> object:
    return admin.check_expiry(value, utcnow())


_KEY_FORMATS: dict[str, Format] = {
    "partner": text_format("partner", admin.MAX_PARTNER_NAME_CHARS),
    "label": text_format("label", admin.MAX_LABEL_CHARS),
    "expires_at": _expiry,
}


def admin_routes(access: AdminAccess, counted: Callable[[str, Handle], ASGIApp]) -> list[Route]:
    """The /v1/admin/ routes, each counted under its own name."""
    store = access.store

    async def list_partners(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        limit = list_limit(admin_query(scope, ("limit",)))
        found, truncated = await blocking(lambda: admin.list_partners(store, limit))
        partners = [Partner(p.partner_id, p.name, p.created_at) for p in found]
        return admin_answer(200, PartnerList(partners, truncated), Outcome.SERVED)

    async def create_partner(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        admin_query(scope, ())
        formats = {"name": text_format("name", admin.MAX_PARTNER_NAME_CHARS)}
        request, _ = await admin_body(
            scope, receive, headers, access, PartnerCreateRequest, formats
        )
        made = await blocking(lambda: admin.create_partner(store, actor, request.name))
        return admin_answer(201, Partner(made.partner_id, made.name, made.created_at))

    async def list_keys(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        partner, limit = partner_list_query(scope)
        found, truncated = await blocking(lambda: admin.list_keys(store, partner, limit))
        now = utcnow()
        keys = [api_key(record, now) for record in found]
        return admin_answer(200, ApiKeyList(keys, truncated), Outcome.SERVED)

    async def create_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        admin_query(scope, ())
        request, _ = await admin_body(
            scope, receive, headers, access, KeyCreateRequest, _KEY_FORMATS
        )
        expires = admin.check_expiry(request.expires_at, utcnow()) if request.expires_at else None
        rate_limit = admin.check_rate_limit(request.rate_limit or 0)
        created = await blocking(
            lambda: admin.create_key(
                store,
                actor,
                partner=request.partner,
                label=request.label,
                expires_at=expires,
                rate_limit=rate_limit,
                test=request.test,
            )
        )
        return admin_answer(201, _new_key(created, utcnow()))

    async def update_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        key_id = _key_id(scope)
        admin_query(scope, ())
        request, _ = await admin_body(
            scope, receive, headers, access, KeyUpdateRequest, _KEY_FORMATS
        )
        changes: dict[str, Any] = {}
        if request.label is not None:
            changes["label"] = request.label
        if request.rate_limit is not None:
            changes["rate_limit"] = admin.check_rate_limit(request.rate_limit)
        if request.expires_at is not None:
            changes["expires_at"] = admin.check_expiry(request.expires_at, utcnow())
        if not changes:
            raise ValidationFailed("nothing to change: give label, rate_limit or expires_at")
        record = await blocking(lambda: admin.update_key(store, actor, key_id, changes))
        return admin_answer(200, api_key(record, utcnow()))

    async def revoke_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        key_id = _key_id(scope)
        admin_query(scope, ())
        await admin_body(scope, receive, headers, access, KeyRevokeRequest, {})
        record = await blocking(lambda: admin.revoke_key(store, actor, key_id))
        return admin_answer(200, api_key(record, utcnow()))

    async def rotate_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        key_id = _key_id(scope)
        admin_query(scope, ())
        request, _ = await admin_body(scope, receive, headers, access, KeyRotateRequest, {})
        grace = admin.DEFAULT_GRACE_S if request.grace_seconds is None else request.grace_seconds
        rotated = await blocking(lambda: admin.rotate_key(store, actor, key_id, grace))
        now = utcnow()
        return admin_answer(201, _new_key(rotated.new, now, rotated_from=api_key(rotated.old, now)))

    async def audit(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        query = admin_query(scope, ("since", "limit"))
        limit = list_limit(query)
        since = admin.parse_instant(query["since"], "since") if "since" in query else None
        found = await blocking(lambda: admin.audit_entries(store, since, limit))
        entries = [AuditEntry(e.id, e.at, e.actor, e.action, e.target, e.details) for e in found]
        return admin_answer(200, AuditList(entries), Outcome.SERVED)

    def route(name: str, work: AdminHandle) -> ASGIApp:
        return counted(name, admin_handle(access, work))

    return [
        get("/v1/admin/partners", app=route("admin_partners", list_partners)),
        post("/v1/admin/partners", app=route("admin_partner_create", create_partner)),
        get("/v1/admin/keys", app=route("admin_keys", list_keys)),
        post("/v1/admin/keys", app=route("admin_key_create", create_key)),
        patch("/v1/admin/keys/{key_id}", app=route("admin_key_update", update_key)),
        post("/v1/admin/keys/{key_id}/revoke", app=route("admin_key_revoke", revoke_key)),
        post("/v1/admin/keys/{key_id}/rotate", app=route("admin_key_rotate", rotate_key)),
        get("/v1/admin/audit", app=route("admin_audit", audit)),
        *tag_routes(access, route),
    ]
