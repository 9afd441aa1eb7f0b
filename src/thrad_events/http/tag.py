"""The browser Tag's surface: GET /v1/tag.js, and POST /v1/tag/collect and /v1/tag/conversion.

The two POST endpoints are public (a page holds no key), so what lets a request in is, cheapest
first: the Origin header (present, an origin), the declared size, the client IP's rate limit
(a preflight counts too), the body (size-capped, timed), its tag_id, that tag's registered
origins (403 origin_not_allowed), the tag's rate limit and daily cap; then the same ingest
pipeline as the server-to-server endpoints, told that the sender is the tag
(ingest/pipeline.py: channel web, the browser's IP and user agent, the partner from the
registry). A CORS preflight (OPTIONS) is answered 204 only for an origin some tag lists. The
Tag sends `text/plain` (sendBeacon, or fetch in no-cors mode), which needs no preflight; the
body is JSON whatever its Content-Type.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import msgspec
from starlette.types import Receive, Scope

from thrad_events.auth.tags import TagRegistry, request_origin
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.errors import (
    IngestError,
    InvalidJson,
    MissingField,
    OriginNotAllowed,
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
from thrad_events.store.tags import TagRecord

Ingest = Callable[[bytes, TagRecord, RequestContext], Awaitable[Outcome]]

# How long browsers may reuse a preflight's answer, and tag.js before asking again (the ETag
# makes the asking cheap).
PREFLIGHT_MAX_AGE_S = 600
SCRIPT_MAX_AGE_S = 3600


@dataclass(frozen=True, slots=True)
class TagAdmission:
    """What lets a browser Tag request in: its origin, its tag, their limits, its body's bounds."""

    registry: TagRegistry
    limiter: KeyRateLimiter
    proxies: TrustedProxies
    max_body_bytes: int
    tag_per_s: int
    ip_per_s: int
    body_timeout_s: float = 10.0


class _TagOf(msgspec.Struct):
    tag_id: str | None = None


_tag_decoder = msgspec.json.Decoder(_TagOf)


def tag_id_of(body: bytes) -> str:
    """The registered tag a body names: required, whatever else the body holds."""
    try:
        found = _tag_decoder.decode(body)
    except msgspec.ValidationError:
        if body.lstrip()[:1] != b"{":
            raise InvalidJson("body must be a JSON object") from None
        raise field_error(ValidationFailed, "tag_id", "must be a string") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidJson("body is not valid JSON") from None
    if found.tag_id is None or not found.tag_id.strip():
        raise field_error(MissingField, "tag_id", "required: the Tag's registered tag_id")
    return found.tag_id


def cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]


def _preflight_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        *cors_headers(origin),
        (b"access-control-allow-methods", b"POST"),
        (b"access-control-allow-headers", b"Content-Type"),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
    ]


def tag_ingest_handle(
    admission: TagAdmission, ingest: Ingest, answers: dict[Outcome, Answer]
) -> Handle:
    """POST (and OPTIONS) of a Tag endpoint: admit, `ingest` as the tag, answer by outcome."""
    registry, limiter, proxies = admission.registry, admission.limiter, admission.proxies
    max_bytes, timeout_s = admission.max_body_bytes, admission.body_timeout_s

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        origin = request_origin(headers.get("origin"))
        if origin is None:
            raise OriginNotAllowed("the Origin header must name the page's origin")
        preflight = scope["method"] == "OPTIONS"
        if not preflight and declared_too_large(headers, max_bytes):
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        client = scope.get("client")
        ctx = context_of(headers, client and client[0])
        sender_ip = proxies.sender_ip(ctx.peer_ip, ctx.forwarded_for, ctx.forwarded)
        # A preflight too: one for an origin nobody registered is a lookup in the store.
        await limiter.check_name(f"tag-ip:{sender_ip}", admission.ip_per_s)
        if preflight:
            if not await registry.origin_registered(origin):
                raise OriginNotAllowed(f"no tag is registered for {origin}")
            return Outcome.SERVED, Answer(204, b"", _preflight_headers(origin))
        body = await read_body(receive, headers, max_bytes, timeout_s)
        tag_id = tag_id_of(body)
        tag = await registry.find(tag_id)
        # An unknown tag and another site's tag are refused alike: which tag ids exist is
        # nothing a page needs to learn.
        if tag is None or origin not in tag.origins:
            raise OriginNotAllowed(f"tag_id {tag_id!r} is not registered for {origin}")
        try:
            await limiter.check_name(f"tag:{tag.tag_id}", admission.tag_per_s)
            if tag.daily_cap is not None:
                await limiter.check_daily(f"tag-day:{tag.tag_id}", tag.daily_cap)
            outcome = await ingest(body, tag, ctx)
        except IngestError as error:
            error.partner_id = tag.partner_id
            raise
        answer = answers[outcome]
        return outcome, Answer(answer.status, answer.body, [*answer.headers, *cors_headers(origin)])

    return handle


@dataclass(frozen=True, slots=True)
class Script:
    """tag.js as served: its bytes, gzipped once, and the ETag of each."""

    source: bytes
    gzipped: bytes
    etag: bytes

    @classmethod
    def load(cls) -> Script:
        source = (resources.files("thrad_events.http") / "tag.js").read_bytes()
        digest = hashlib.sha256(source).hexdigest()[:32]
        return cls(source, gzip.compress(source, mtime=0), f'"{digest}"'.encode())


def _etag_matches(if_none_match: str | None, etag: bytes) -> bool:
    if not if_none_match:
        return False
    wanted = etag.decode().strip('"')
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"').removesuffix("-gzip")
        if tag in (wanted, "*"):
            return True
    return False


def script_handle(script: Script) -> Handle:
    """GET /v1/tag.js: the script, cacheable, 304 when the browser's copy is current."""
    common = [
        (b"cache-control", f"public, max-age={SCRIPT_MAX_AGE_S}".encode()),
        (b"vary", b"Accept-Encoding"),
        # Any page may load it, as a script or with fetch (integrity checks need CORS).
        (b"access-control-allow-origin", b"*"),
        (b"x-content-type-options", b"nosniff"),
    ]
    js_type = (b"content-type", b"application/javascript; charset=utf-8")
    gzip_etag = script.etag[:-1] + b'-gzip"'
    plain = Answer(200, script.source, [js_type, (b"etag", script.etag), *common])
    packed = Answer(
        200,
        script.gzipped,
        [js_type, (b"content-encoding", b"gzip"), (b"etag", gzip_etag), *common],
    )

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        wants_gzip = "gzip" in headers.get("accept-encoding", "").lower()
        answer = packed if wants_gzip else plain
        if _etag_matches(headers.get("if-none-match"), script.etag):
            etag = gzip_etag if wants_gzip else script.etag
            return Outcome.SERVED, Answer(304, b"", [(b"etag", etag), *common])
        return Outcome.SERVED, answer

    return handle
