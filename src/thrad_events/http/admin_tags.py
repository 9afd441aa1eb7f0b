"""GET, POST and PATCH /v1/admin/tags: the browser Tag registry, for an operator's admin token.

GET lists the tags (`?partner=` a name or id), POST registers one
(`{"partner", "tag_id", "origins": [...], "daily_cap"?}` → 201, 409 when the tag_id is taken),
PATCH changes one (`{"tag_id", "daily_cap"?: N or null, "origins"?: [...]}` → 200, 404 unknown).
The registry's calls block on the store, so they run in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Receive, Scope

from thrad_events.auth.keys import bearer_token, is_admin_token
from thrad_events.auth.tags import create_tag, update_tag
from thrad_events.errors import (
    Forbidden,
    InvalidJson,
    MissingField,
    NotFound,
    Outcome,
    ValidationFailed,
    field_error,
)
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.request import read_body
from thrad_events.store.base import Store
from thrad_events.store.tags import KEEP, TagRecord

MAX_ADMIN_BODY_BYTES = 64 * 1024
_HEADERS = [JSON_TYPE, (b"cache-control", b"no-store")]
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def require_admin(headers: Mapping[str, str], admin_token: str | None) -> None:
    """An operator's request: `Authorization: Bearer <THRAD_ADMIN_TOKEN>` (401 without a bearer
    token, 403 with any other; always 403 when no admin token is configured)."""
    token = bearer_token(headers.get("authorization"))
    if not is_admin_token(token, admin_token):
        raise Forbidden("this endpoint needs the admin token")


def tag_json(tag: TagRecord) -> dict[str, Any]:
    return {
        "tag_id": tag.tag_id,
        "partner_id": tag.partner_id,
        "partner": tag.partner_name,
        "origins": list(tag.origins),
        "daily_cap": tag.daily_cap,
        "created_at": tag.created_at,
    }


async def _body(receive: Receive, headers: Mapping[str, str]) -> dict[str, Any]:
    raw = await read_body(receive, headers, MAX_ADMIN_BODY_BYTES)
    try:
        value = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidJson("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidJson("body must be a JSON object")
    return value


def _required(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if body.get(name) is None:
            raise field_error(MissingField, name, "required field is missing")


def _partner_of(store: Store, partner: str) -> str | None:
    """The partner id a ?partner= names (its name or id); None when there is none such."""
    for tag in store.tags().list_tags():
        if partner in (tag.partner_id, tag.partner_name):
            return tag.partner_id
    return None


def admin_tags_handle(store: Store, admin_token: str | None) -> Handle:
    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        require_admin(headers, admin_token)
        method = scope["method"]
        if method in ("GET", "HEAD"):
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            tags = await asyncio.to_thread(_listed, store, query.get("partner"))
            answer = {"tags": [tag_json(tag) for tag in tags]}
            return Outcome.SERVED, Answer(200, _encoder.encode(answer), _HEADERS)
        body = await _body(receive, headers)
        if method == "POST":
            _required(body, "partner", "tag_id", "origins")
            tag = await asyncio.to_thread(
                lambda: create_tag(
                    store,
                    partner=body["partner"],
                    tag_id=body["tag_id"],
                    origins=body["origins"] if isinstance(body["origins"], list) else (),
                    daily_cap=body.get("daily_cap"),
                )
            )
            return Outcome.STORED, Answer(201, _encoder.encode(tag_json(tag)), _HEADERS)
        _required(body, "tag_id")
        if not isinstance(body["tag_id"], str):
            raise field_error(ValidationFailed, "tag_id", "must be a string")
        found = await asyncio.to_thread(
            lambda: update_tag(
                store,
                body["tag_id"],
                daily_cap=body.get("daily_cap", KEEP),
                origins=body.get("origins", KEEP),
            )
        )
        if found is None:
            raise field_error(NotFound, "tag_id", f"no tag {body['tag_id']!r}")
        return Outcome.STORED, Answer(200, _encoder.encode(tag_json(found)), _HEADERS)

    return handle


def _listed(store: Store, partner: str | None) -> list[TagRecord]:
    if partner is None:
        return store.tags().list_tags()
    partner_id = _partner_of(store, partner)
    return store.tags().list_tags(partner_id) if partner_id is not None else []
