"""The admin API under /v1/admin/: partners, API keys and the audit trail, for operators.

Every request needs `Authorization: Bearer <THRAD_ADMIN_TOKEN>`, checked by `authorize_admin`
(which any other operator endpoint reuses): without a configured token the admin API is off and
answers 403 (no credential could ever open it; the message says what to set); a missing, malformed
or wrong token is a 401; a partner's API key a 403. Bodies are small JSON objects, their unknown
fields refused. The actions live in auth/admin.py, each written with its audit entry in one
transaction; they block on the store, so they run on a worker thread, never on the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
import msgspec
from starlette.types import ASGIApp, Receive, Scope

from thrad_events.auth import admin
from thrad_events.auth.keys import KeyCache, bearer_token, is_admin_token, token_fingerprint
from thrad_events.errors import (
    Forbidden,
    InvalidJson,
    NotFound,
    Outcome,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    field_error,
)
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.request import declared_too_large, read_body
from thrad_events.http.routing import Route, get, patch, post
from thrad_events.ingest.problems import Format, Problems, check_fields, json_kind
from thrad_events.ingest.validate import check_utf8
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
from thrad_events.store.base import ApiKeyRecord, StorageError, Store, utcnow

# An operator's body is a few fields: anything larger is not one.
MAX_ADMIN_BODY_BYTES = 16 * 1024
# Key ids are `key_` and 16 hex digits; anything else cannot name a key.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
# Keys and the audit trail are the operator's: no shared cache may keep them.
_HEADERS = [(b"cache-control", b"no-store"), JSON_TYPE]
S = TypeVar("S", bound=msgspec.Struct)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AdminAccess:
    keys: KeyCache
    admin_token: str | None
    store: Store
    body_timeout_s: float = 10.0


async def authorize_admin(headers: Mapping[str, str], access: AdminAccess) -> str:
    """The actor of an operator's request (the admin token's fingerprint), or why it is refused."""
    if not access.admin_token:
        raise Forbidden("the admin API is off: the server was started without THRAD_ADMIN_TOKEN")
    token = bearer_token(headers.get("authorization"))
    if is_admin_token(token, access.admin_token):
        return token_fingerprint(token)
    try:
        key = await access.keys.authenticate(token, touch=False)
    except Unauthorized:
        raise Unauthorized("Authorization is not the admin token") from None
    error = Forbidden("an API key cannot use the admin API: use THRAD_ADMIN_TOKEN")
    error.partner_id, error.key_id = key.partner_id, key.key_id
    raise error


async def admin_body(
    scope: Scope,
    receive: Receive,
    headers: Mapping[str, str],
    access: AdminAccess,
    struct: type[S],
    formats: Mapping[str, Format],
) -> tuple[S, dict[str, Any]]:
    """The request's body as `struct` (an empty body is `{}`), with the fields it gave; every
    problem in it at once: unknown fields, types, bounds, then `formats` by field."""
    body = await read_body(receive, headers, MAX_ADMIN_BODY_BYTES, access.body_timeout_s)
    values: Any = {}
    if body.strip():
        check_utf8(body)
        try:
            values = _decoder.decode(body)
        except msgspec.ValidationError:
            raise ValidationFailed("a number in the body is too large") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise InvalidJson(f"body is not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidJson("body is nested too deeply") from None
        if not isinstance(values, dict):
            raise InvalidJson(f"body must be a JSON object, not {json_kind(body)}")
    problems = Problems()
    for name in values:
        if name not in struct.__struct_fields__:
            problems.add(name, "unknown field")
    check_fields(struct, values, problems, formats)
    if (error := problems.error()) is not None:
        raise error
    try:
        return msgspec.convert(values, struct, strict=True), values
    except msgspec.ValidationError:
        raise ValidationFailed("body has a value of the wrong type or format") from None


def _query(scope: Scope, allowed: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if name not in allowed:
            raise field_error(
                ValidationFailed, name[:64], f"unknown parameter; known: {', '.join(allowed)}"
            )
        if name in found:
            raise field_error(ValidationFailed, name, "given more than once")
        found[name] = value
    return found


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return admin.DEFAULT_LIST_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise field_error(
            ValidationFailed, "limit", f"must be a whole number from 1 to {admin.MAX_LIST_LIMIT}"
        )
    return admin.check_limit(int(raw))


def _key_id(scope: Scope) -> str:
    key_id: str = scope["path_params"]["key_id"]
    if _KEY_ID.fullmatch(key_id) is None:
        raise NotFound("no such key")
    return key_id


async def _blocking(call: Callable[[], T]) -> T:
    """A store call on a worker thread; storage trouble is a 503 to retry."""
    try:
        return await anyio.to_thread.run_sync(call)
    except StorageError as exc:
        raise Unavailable(f"storage unavailable: {exc}") from exc


def _answer(
    status: int, body: msgspec.Struct, outcome: Outcome = Outcome.STORED
) -> tuple[Outcome, Answer]:
    """A write's answer (`stored`), or with Outcome.SERVED a read's."""
    return outcome, Answer(status, _encoder.encode(body), _HEADERS)


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


def _text(field: str, most: int) -> Format:
    return lambda value: admin.check_text(value, field, most)


def _expiry(value: str) -> object:
    return admin.check_expiry(value, utcnow())


_KEY_FORMATS: dict[str, Format] = {
    "partner": _text("partner", admin.MAX_PARTNER_NAME_CHARS),
    "label": _text("label", admin.MAX_LABEL_CHARS),
    "expires_at": _expiry,
}

AdminHandle = Callable[[Scope, Receive, dict[str, str], str], Any]


def _handle(access: AdminAccess, work: AdminHandle) -> Handle:
    """The endpoint: refuse an oversized body, authorise, then `work` with the actor."""

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        if declared_too_large(headers, MAX_ADMIN_BODY_BYTES):
            raise PayloadTooLarge(f"body is larger than {MAX_ADMIN_BODY_BYTES} bytes")
        actor = await authorize_admin(headers, access)
        result: tuple[Outcome, Answer] = await work(scope, receive, headers, actor)
        return result

    return handle


def admin_routes(access: AdminAccess, counted: Callable[[str, Handle], ASGIApp]) -> list[Route]:
    """The /v1/admin/ routes, each counted under its own name."""
    store = access.store

    async def list_partners(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        limit = _limit(_query(scope, ("limit",)))
        found, truncated = await _blocking(lambda: admin.list_partners(store, limit))
        partners = [Partner(p.partner_id, p.name, p.created_at) for p in found]
        return _answer(200, PartnerList(partners, truncated), Outcome.SERVED)

    async def create_partner(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        _query(scope, ())
        formats = {"name": _text("name", admin.MAX_PARTNER_NAME_CHARS)}
        request, _ = await admin_body(
            scope, receive, headers, access, PartnerCreateRequest, formats
        )
        made = await _blocking(lambda: admin.create_partner(store, actor, request.name))
        return _answer(201, Partner(made.partner_id, made.name, made.created_at))

    async def list_keys(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        query = _query(scope, ("partner", "limit"))
        limit = _limit(query)
        partner = query.get("partner")
        if partner is not None:
            admin.check_text(partner, "partner", admin.MAX_PARTNER_NAME_CHARS)
        found, truncated = await _blocking(lambda: admin.list_keys(store, partner, limit))
        now = utcnow()
        keys = [api_key(record, now) for record in found]
        return _answer(200, ApiKeyList(keys, truncated), Outcome.SERVED)

    async def create_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        _query(scope, ())
        request, _ = await admin_body(
            scope, receive, headers, access, KeyCreateRequest, _KEY_FORMATS
        )
        expires = admin.check_expiry(request.expires_at, utcnow()) if request.expires_at else None
        rate_limit = admin.check_rate_limit(request.rate_limit or 0)
        created = await _blocking(
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
        return _answer(201, _new_key(created, utcnow()))

    async def update_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        key_id = _key_id(scope)
        _query(scope, ())
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
        record = await _blocking(lambda: admin.update_key(store, actor, key_id, changes))
        return _answer(200, api_key(record, utcnow()))

    async def revoke_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        key_id = _key_id(scope)
        _query(scope, ())
        await admin_body(scope, receive, headers, access, KeyRevokeRequest, {})
        record = await _blocking(lambda: admin.revoke_key(store, actor, key_id))
        return _answer(200, api_key(record, utcnow()))

    async def rotate_key(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        key_id = _key_id(scope)
        _query(scope, ())
        request, _ = await admin_body(scope, receive, headers, access, KeyRotateRequest, {})
        grace = admin.DEFAULT_GRACE_S if request.grace_seconds is None else request.grace_seconds
        rotated = await _blocking(lambda: admin.rotate_key(store, actor, key_id, grace))
        now = utcnow()
        return _answer(201, _new_key(rotated.new, now, rotated_from=api_key(rotated.old, now)))

    async def audit(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        query = _query(scope, ("since", "limit"))
        limit = _limit(query)
        since = admin.parse_instant(query["since"], "since") if "since" in query else None
        found = await _blocking(lambda: admin.audit_entries(store, since, limit))
        entries = [AuditEntry(e.id, e.at, e.actor, e.action, e.target, e.details) for e in found]
        return _answer(200, AuditList(entries), Outcome.SERVED)

    def route(name: str, work: AdminHandle) -> ASGIApp:
        return counted(name, _handle(access, work))

    return [
        get("/v1/admin/partners", app=route("admin_partners", list_partners)),
        post("/v1/admin/partners", app=route("admin_partner_create", create_partner)),
        get("/v1/admin/keys", app=route("admin_keys", list_keys)),
        post("/v1/admin/keys", app=route("admin_key_create", create_key)),
        patch("/v1/admin/keys/{key_id}", app=route("admin_key_update", update_key)),
        post("/v1/admin/keys/{key_id}/revoke", app=route("admin_key_revoke", revoke_key)),
        post("/v1/admin/keys/{key_id}/rotate", app=route("admin_key_rotate", rotate_key)),
        get("/v1/admin/audit", app=route("admin_audit", audit)),
    ]
