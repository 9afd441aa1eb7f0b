"""What every operator endpoint under /v1/admin/ shares: who may call it, how its body and query
are read, how its store calls run and how it answers.

Every request needs `Authorization: Bearer <THRAD_ADMIN_TOKEN>`, checked by `authorize_admin`
(which any other operator endpoint reuses): without a configured token the admin API is off and
answers 403 (no credential could ever open it; the message says what to set); a missing, malformed
or wrong token is a 401; a partner's API key a 403. Bodies are small JSON objects read into a
Struct of schemas.py, every problem listed at once and unknown fields refused. Operator actions
block on the store, so they run on a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
import msgspec
from starlette.types import Receive, Scope

from thrad_events.auth import admin
from thrad_events.auth.keys import KeyCache, bearer_token, is_admin_token, token_fingerprint
from thrad_events.errors import (
    Forbidden,
    InvalidJson,
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
from thrad_events.ingest.problems import Format, Problems, check_fields, json_kind
from thrad_events.ingest.validate import check_utf8
from thrad_events.reports.query import limit_value
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError

# An operator's body is a few fields: anything larger is not one.
MAX_ADMIN_BODY_BYTES = 16 * 1024
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
# Keys, tags and the audit trail are the operator's: no shared cache may keep them.
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
    token = bearer_token(headers.get("authorization"), "admin token")
    if is_admin_token(token, access.admin_token):
        return token_fingerprint(token)
    try:
        key = await access.keys.authenticate(token, touch=False)
    except Unauthorized:
        raise Unauthorized("Authorization is not the admin token") from None
    raise Forbidden("an API key cannot use the admin API: use THRAD_ADMIN_TOKEN").sent_with(key)


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


def admin_query(scope: Scope, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters, each known and given once (else a 422 naming it)."""
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


def list_limit(query: Mapping[str, str]) -> int:
    """A list's `limit`: 1 to admin.MAX_LIST_LIMIT, admin.DEFAULT_LIST_LIMIT when not given."""
    return limit_value(
        query.get("limit"), default=admin.DEFAULT_LIST_LIMIT, maximum=admin.MAX_LIST_LIMIT
    )


def partner_list_query(scope: Scope) -> tuple[str | None, int]:
    """A list's `?partner=` (a partner's id or name, checked as a name is) and its `limit`."""
    query = admin_query(scope, ("partner", "limit"))
    limit = list_limit(query)
    partner = query.get("partner")
    if partner is not None:
        admin.check_text(partner, "partner", admin.MAX_PARTNER_NAME_CHARS)
    return partner, limit


def text_format(field: str, most: int) -> Format:
    """A name or label's check (auth/admin.py `check_text`), for `admin_body`'s formats."""
    return lambda value: admin.check_text(value, field, most)


async def blocking(call: Callable[[], T]) -> T:
    """A store call on a worker thread; storage trouble is a 503 to retry."""
    try:
        return await anyio.to_thread.run_sync(call)
    except StorageError as exc:
        raise Unavailable(f"storage unavailable: {exc}") from exc


def admin_answer(
    status: int, body: msgspec.Struct, outcome: Outcome = Outcome.STORED
) -> tuple[Outcome, Answer]:
    """A write's answer (`stored`), or with Outcome.SERVED a read's."""
    return outcome, Answer(status, _encoder.encode(body), _HEADERS)


AdminHandle = Callable[[Scope, Receive, dict[str, str], str], Any]


def admin_handle(access: AdminAccess, work: AdminHandle) -> Handle:
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
