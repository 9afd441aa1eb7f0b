"""What every authenticated ingest endpoint does before its own work, in the order that is cheap.

The declared body size, then the API key and its rate limit, then reading the body (size-capped,
gzip inflated, within the body timeout), then the pipeline; the endpoint only says how the
pipeline's result is answered. With `?validate_only=true` the body goes to the endpoint's check
instead (ingest/checks.py): admitted the same way, nothing stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from thrad_events.auth.keys import KeyCache, bearer_token
from thrad_events.errors import (
    IngestError,
    Outcome,
    PayloadTooLarge,
    ValidationFailed,
    field_error,
)
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer
from thrad_events.http.request import context_of, declared_too_large, read_body
from thrad_events.ingest.pipeline import RequestContext
from thrad_events.ratelimits import KeyRateLimiter
from thrad_events.store.delivery import BODY_EXCERPT_BYTES
from thrad_events.store.records import ApiKeyRecord

Result = TypeVar("Result")
# An endpoint's validate_only: the admitted body checked and answered, nothing stored.
Check = Callable[[bytes, ApiKeyRecord, RequestContext], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Admission:
    """What lets an ingest request in: its key, its rate limit, and the bounds of its body."""

    keys: KeyCache
    limiter: KeyRateLimiter
    max_body_bytes: int
    body_timeout_s: float = 10.0


def ingest_handle(
    admission: Admission,
    ingest: Callable[[bytes, ApiKeyRecord, RequestContext], Awaitable[Result]],
    respond: Callable[[Result], tuple[Outcome, Answer]],
    check: Check | None = None,
) -> Handle:
    """The endpoint's handle: admit the request, `ingest` its body, `respond` with the result.

    `respond` is a dict lookup for the single endpoints (no call of ours on the hot path). An
    endpoint with a `check` takes `?validate_only=true`, and answers it with the check.
    """
    keys, limiter = admission.keys, admission.limiter
    max_bytes, timeout_s = admission.max_body_bytes, admission.body_timeout_s

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        authorization = headers.get("authorization")
        if declared_too_large(headers, max_bytes):
            # Refused whatever the key; a known key's refusal is kept (ingest/delivery.py).
            too_large = PayloadTooLarge(f"body is larger than {max_bytes} bytes")
            await attribute_to_key(keys, authorization, too_large)
            raise too_large
        key = await keys.authenticate(bearer_token(authorization))
        body = None
        try:
            await limiter.check(key)
            validate_only = check is not None and validate_only_asked(scope["query_string"])
            body = await read_body(receive, headers, max_bytes, timeout_s)
            client = scope.get("client")
            ctx = context_of(headers, client and client[0])
            if validate_only:
                assert check is not None
                return Outcome.VALIDATED, await check(body, key, ctx)
            return respond(await ingest(body, key, ctx))
        except IngestError as error:
            error.sent_with(key)
            if body is not None:
                error.body = body[:BODY_EXCERPT_BYTES]
            raise

    return handle


async def attribute_to_key(keys: KeyCache, authorization: str | None, error: IngestError) -> None:
    """Mark `error`, a refusal that does not depend on the key, with the key of `authorization`
    when that is a valid one, so that it is kept for the key's partner; else leave it as is."""
    with contextlib.suppress(IngestError):
        error.sent_with(await keys.authenticate(bearer_token(authorization), touch=False))


def validate_only_asked(query_string: bytes) -> bool:
    """Whether the query asks `validate_only=true`; a value other than true or false is a 422."""
    if not query_string:
        return False
    values = [
        value
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if name == "validate_only"
    ]
    if not values:
        return False
    if len(values) > 1:
        raise field_error(ValidationFailed, "validate_only", "given more than once")
    if values[0] not in ("true", "false"):
        raise field_error(ValidationFailed, "validate_only", "must be true or false")
    return values[0] == "true"
