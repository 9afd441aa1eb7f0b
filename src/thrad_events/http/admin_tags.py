"""GET, POST and PATCH /v1/admin/tags: the browser Tag registry, on the admin API's machinery.

GET lists the tags (`?partner=` a name or id, `?limit=`), POST registers one
(`{"partner", "tag_id", "origins": [...], "daily_cap"?}` → 201, 409 when the tag_id is taken),
PATCH changes one, named in the path (`/v1/admin/tags/{tag_id}`, as keys are) or in the body
(`{"tag_id", ...}`, which also reaches a tag_id holding a `/`) → 200, 404 when unknown. The
admin token, bodies, queries and answers are those of every /v1/admin/ endpoint
(http/admin_request.py); the actions are auth/tags.py's, each recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope

from thrad_events.auth import admin
from thrad_events.auth.tags import check_origins, check_tag_id, create_tag, list_tags, update_tag
from thrad_events.errors import IngestError, NotFound, Outcome
from thrad_events.http.admin_request import (
    AdminAccess,
    AdminHandle,
    admin_answer,
    admin_body,
    admin_query,
    blocking,
    partner_list_query,
    text_format,
)
from thrad_events.http.errors import Answer
from thrad_events.http.routing import Route, get, patch, post
from thrad_events.ingest.problems import Format
from thrad_events.schemas import (
    Tag,
    TagChangeRequest,
    TagCreateRequest,
    TagList,
    TagUpdateRequest,
)
from thrad_events.store.tags import KEEP, TagRecord

_FORMATS: dict[str, Format] = {
    "partner": text_format("partner", admin.MAX_PARTNER_NAME_CHARS),
    "tag_id": check_tag_id,
    "origins": check_origins,
}


def tag_answer(tag: TagRecord) -> Tag:
    return Tag(
        tag_id=tag.tag_id,
        partner_id=tag.partner_id,
        partner=tag.partner_name,
        origins=list(tag.origins),
        daily_cap=tag.daily_cap,
        created_at=tag.created_at,
    )


def _path_tag_id(scope: Scope) -> str:
    tag_id: str = scope["path_params"]["tag_id"]
    try:
        return check_tag_id(tag_id)
    except IngestError:
        raise NotFound("no such tag") from None


def _changes(
    values: dict[str, Any], request: TagChangeRequest | TagUpdateRequest
) -> dict[str, Any]:
    """update_tag's arguments from the fields a PATCH gave: a daily_cap of null removes the cap,
    a field left out (or origins null) stays as it is."""
    return {
        "daily_cap": request.daily_cap if "daily_cap" in values else KEEP,
        "origins": request.origins if request.origins is not None else KEEP,
    }


def tag_routes(access: AdminAccess, route: Callable[[str, AdminHandle], ASGIApp]) -> list[Route]:
    """The registry's routes; `route` makes each an admin endpoint counted under its name."""
    store = access.store

    async def list_all(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        partner, limit = partner_list_query(scope)
        found, truncated = await blocking(lambda: list_tags(store, partner, limit))
        return admin_answer(200, TagList([tag_answer(t) for t in found], truncated), Outcome.SERVED)

    async def create(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        admin_query(scope, ())
        request, _ = await admin_body(scope, receive, headers, access, TagCreateRequest, _FORMATS)
        made = await blocking(
            lambda: create_tag(
                store,
                actor,
                partner=request.partner,
                tag_id=request.tag_id,
                origins=request.origins,
                daily_cap=request.daily_cap,
            )
        )
        return admin_answer(201, tag_answer(made))

    async def update_named_in_body(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        admin_query(scope, ())
        request, values = await admin_body(
            scope, receive, headers, access, TagUpdateRequest, _FORMATS
        )
        changes = _changes(values, request)
        changed = await blocking(lambda: update_tag(store, actor, request.tag_id, **changes))
        return admin_answer(200, tag_answer(changed))

    async def update_named_in_path(
        scope: Scope, receive: Receive, headers: dict[str, str], actor: str
    ) -> tuple[Outcome, Answer]:
        tag_id = _path_tag_id(scope)
        admin_query(scope, ())
        request, values = await admin_body(
            scope, receive, headers, access, TagChangeRequest, _FORMATS
        )
        changes = _changes(values, request)
        changed = await blocking(lambda: update_tag(store, actor, tag_id, **changes))
        return admin_answer(200, tag_answer(changed))

    return [
        get("/v1/admin/tags", app=route("admin_tags", list_all)),
        post("/v1/admin/tags", app=route("admin_tag_create", create)),
        patch("/v1/admin/tags", app=route("admin_tag_update", update_named_in_body)),
        patch("/v1/admin/tags/{tag_id}", app=route("admin_tag_update", update_named_in_path)),
    ]
