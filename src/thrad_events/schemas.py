"""msgspec Structs for every request and response body; the OpenAPI document is built from them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# Bounds keep one request from holding megabytes of a single string in memory or in a row.
Id = Annotated[str, Meta(min_length=1, max_length=256)]
Name = Annotated[str, Meta(min_length=1, max_length=256, description="Event name")]
Url = Annotated[str, Meta(max_length=8192)]
UserAgent = Annotated[str, Meta(max_length=2048)]
ShortText = Annotated[str, Meta(max_length=256)]
IpText = Annotated[str, Meta(max_length=64, description="IPv4 or IPv6 address of the end user")]
# extra["unit"] is what the number counts, for the error messages (ingest/problems.py).
_TS = Meta(ge=0, le=253402300799, description="Unix seconds", extra={"unit": "s"})
Timestamp = Annotated[int, _TS] | Annotated[float, _TS]
_VIEW_TIME = Meta(ge=0, le=2**53, description="View time in milliseconds", extra={"unit": "ms"})
# A float is accepted when it has no fraction (1007.0), as JSON numbers often are written.
ViewTime = Annotated[int, _VIEW_TIME] | Annotated[float, _VIEW_TIME]
JsonObject = dict[str, Any]


class CollectRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Body of POST /v1/api/collect. Only event_name is required."""

    event_name: Name
    tag_id: ShortText | None = None
    event_id: Id | None = None
    timestamp: Timestamp | None = None
    page_url: Url | None = None
    referrer: Url | None = None
    user_agent: UserAgent | None = None
    channel: ShortText | None = None
    session_id: Id | None = None
    client_id: Id | None = None
    attribution_type: ShortText | None = None
    impression_id: Id | None = None
    click_id: Id | None = None
    bid_id: Id | None = None
    impression_state: ShortText | None = None
    view_time_ms: ViewTime | None = None
    consent: JsonObject | None = None
    params: JsonObject | None = None
    client_ip: IpText | None = None


class ConversionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Body of POST /v1/api/conversion. Unknown top-level fields are kept under params.extra."""

    click_id: Id
    conversion_time: Annotated[
        str, Meta(max_length=64, description="ISO-8601 date and time; UTC when no offset")
    ]
    conversion_value: Annotated[Decimal, Meta(description="Conversion amount, a JSON number")]
    currency: Annotated[str, Meta(min_length=3, max_length=3, description="ISO 4217 code")]
    event_type: ShortText | None = None
    order_id: Id | None = None
    event_id: Id | None = None
    page_url: Url | None = None
    referrer: Url | None = None
    user_agent: UserAgent | None = None
    channel: ShortText | None = None
    session_id: Id | None = None
    client_id: Id | None = None
    tag_id: ShortText | None = None
    consent: JsonObject | None = None
    params: JsonObject | None = None
    client_ip: IpText | None = None


CONVERSION_FIELDS = frozenset(ConversionRequest.__struct_fields__)


class ConversionResponse(msgspec.Struct):
    status: Literal["ok", "duplicate"]


class ErrorDetail(msgspec.Struct):
    field: str
    message: str


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(msgspec.Struct):
    error: ErrorBody


class HealthResponse(msgspec.Struct):
    status: str


MAX_BATCH_ITEMS = 500


class CollectBatchRequest(msgspec.Struct):
    """Body of POST /v1/api/collect/batch: up to 500 events, each as for /v1/api/collect."""

    events: Annotated[list[CollectRequest], Meta(max_length=MAX_BATCH_ITEMS)]


class ConversionBatchRequest(msgspec.Struct):
    """Body of POST /v1/api/conversion/batch: up to 500 conversions, each as for the single one."""

    conversions: Annotated[list[ConversionRequest], Meta(max_length=MAX_BATCH_ITEMS)]


class BatchItemResult(msgspec.Struct, omit_defaults=True):
    index: int
    status: Literal["ok", "duplicate", "error"]
    error: ErrorBody | None = None


class BatchTotals(msgspec.Struct):
    ok: int
    duplicate: int
    error: int


class BatchResponse(msgspec.Struct):
    results: list[BatchItemResult]
    totals: BatchTotals


class ReportFilter(msgspec.Struct):
    field: str
    values: list[str]


class ReportResponse(msgspec.Struct):
    """Answer of GET /v1/api/reports/{events,conversions,funnel}: the query as understood,
    then one row per group, group values first (null where the field is absent)."""

    report: Literal["events", "conversions", "funnel"]
    since: Annotated[str, Meta(description="Inclusive, UTC, on the time_basis")]
    until: Annotated[str, Meta(description="Exclusive, UTC")]
    time_basis: Annotated[
        Literal["event", "received"],
        Meta(
            description="What since, until, day and hour are on: event (timestamp of events, "
            "conversion_time of conversions, the click's time for the funnel) or received"
        ),
    ]
    partner_id: Annotated[str | None, Meta(description="The partner reported on; null for all")]
    group_by: list[str]
    filters: list[ReportFilter]
    rows: list[dict[str, Any]]
    truncated: Annotated[bool, Meta(description="More groups exist than limit allowed")]
    include_test: Annotated[
        bool, Meta(description="Whether rows sent with test keys (and test clicks) were counted")
    ] = False


_CLICK_FIELD = Meta(min_length=1, max_length=256)


class ClickCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/api/test/clicks (every field optional; an empty body is `{}`)."""

    campaign_id: Annotated[str, _CLICK_FIELD] | None = None
    ad_id: Annotated[str, _CLICK_FIELD] | None = None
    bid_id: Annotated[str, _CLICK_FIELD] | None = None


class CreatedClick(msgspec.Struct):
    """A stored click, with what the click redirect would hand its landing page."""

    click_id: Annotated[str, Meta(description="uuid4, for a conversion's click_id")]
    thrad_exp: Annotated[int, Meta(description="Unix seconds until which thrad_sig holds")]
    thrad_sig: Annotated[str, Meta(description='HMAC-SHA256 hex of "<click_id>.<thrad_exp>"')]


class ValidationProblem(msgspec.Struct):
    field: Annotated[str | None, Meta(description="Dotted path; null for the body as a whole")]
    message: str


class ValidationResult(msgspec.Struct):
    """Answer of an ingest endpoint called with ?validate_only=true: nothing was stored."""

    valid: bool
    errors: list[ValidationProblem]
    warnings: Annotated[
        list[ValidationProblem], Meta(description="What the server would silently change")
    ]


class BatchValidationItem(msgspec.Struct):
    index: int
    valid: bool
    errors: list[ValidationProblem]
    warnings: list[ValidationProblem]


class BatchValidationResponse(msgspec.Struct):
    """Answer of a batch endpoint called with ?validate_only=true: one result per item."""

    results: list[BatchValidationItem]


# -- the admin API (/v1/admin/...): operator bodies, unknown fields refused ---------------------

PartnerName = Annotated[str, Meta(min_length=1, max_length=128, description="Partner name")]
KeyLabel = Annotated[
    str, Meta(min_length=1, max_length=256, description="Stamped into params.api_key_label")
]
RateLimit = Annotated[
    int, Meta(ge=0, le=1_000_000, description="Requests per second; 0 = the server's default")
]
Expiry = Annotated[
    str, Meta(max_length=64, description="ISO-8601 date-time, in the future; UTC when no offset")
]
GraceSeconds = Annotated[int, Meta(ge=0, le=90 * 86_400, description="Seconds, up to 90 days")]


class PartnerCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/admin/partners."""

    name: PartnerName


class KeyCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/admin/keys."""

    partner: Annotated[str, Meta(min_length=1, max_length=128, description="Partner id or name")]
    label: KeyLabel
    expires_at: Expiry | None = None
    rate_limit: RateLimit | None = None
    test: Annotated[
        bool, Meta(description="A test key (thr_test_...): its rows are kept apart from live ones")
    ] = False


class KeyUpdateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/admin/keys/{key_id}: at least one field."""

    label: KeyLabel | None = None
    rate_limit: RateLimit | None = None
    expires_at: Expiry | None = None


class KeyRotateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/admin/keys/{key_id}/rotate (may be empty)."""

    grace_seconds: GraceSeconds | None = None


class KeyRevokeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/admin/keys/{key_id}/revoke: empty, or an empty object."""


class Partner(msgspec.Struct):
    partner_id: str
    name: str
    created_at: str


class PartnerList(msgspec.Struct):
    partners: list[Partner]
    truncated: Annotated[bool, Meta(description="More partners exist than limit allowed")]


class ApiKey(msgspec.Struct):
    """A key as operators see it: never its secret."""

    key_id: str
    partner_id: str
    label: str
    key_prefix: Annotated[str, Meta(description="The secret's first characters, to recognise it")]
    status: Literal["active", "expired", "revoked"]
    test: Annotated[bool, Meta(description="A test key: rows flagged test, kept apart")]
    rate_limit: Annotated[int | None, Meta(description="Requests per second; null: the default")]
    expires_at: str | None
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


class ApiKeyList(msgspec.Struct):
    keys: list[ApiKey]
    truncated: Annotated[bool, Meta(description="More keys exist than limit allowed")]


class NewApiKey(ApiKey, omit_defaults=True):
    """A key just created: `api_key` is its secret, shown here once and stored only hashed."""

    api_key: str
    rotated_from: Annotated[
        ApiKey | None, Meta(description="Rotation: the old key, with its new expires_at")
    ] = None


class AuditEntry(msgspec.Struct):
    id: int
    time: str
    actor: Annotated[str, Meta(description="token:<fingerprint of the admin token>, or cli")]
    action: Annotated[
        str,
        Meta(
            description="partner.create, key.create, key.update, key.revoke, key.rotate, "
            "tag.create, tag.update"
        ),
    ]
    target: Annotated[str, Meta(description="The partner_id, key_id or tag_id acted on")]
    details: dict[str, Any]


class AuditList(msgspec.Struct):
    entries: Annotated[list[AuditEntry], Meta(description="Newest first")]


# -- the browser Tag registry (/v1/admin/tags) ----------------------------------------------------

TagId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9_.:@/+-]+$",
        description="What the advertiser's pages send as tag_id; never site:... (derived ids)",
    ),
]
TagOrigin = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=300,
        description="scheme://host[:port] exactly: no path, no wildcard",
    ),
]
TagOrigins = Annotated[
    list[TagOrigin],
    Meta(min_length=1, max_length=50, description="The origins whose pages may send for the tag"),
]
DailyCap = Annotated[
    int, Meta(ge=1, le=10**12, description="Requests per UTC day at most; null: no cap")
]


class TagCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/admin/tags."""

    partner: Annotated[
        str,
        Meta(min_length=1, max_length=128, description="Partner id or name; a new name creates it"),
    ]
    tag_id: TagId
    origins: TagOrigins
    daily_cap: DailyCap | None = None


class TagChangeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/admin/tags/{tag_id}: at least one field; a daily_cap of null removes
    the cap, origins replace the tag's."""

    origins: TagOrigins | None = None
    daily_cap: DailyCap | None = None


class TagUpdateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/admin/tags: the tag_id and at least one change (as TagChangeRequest)."""

    tag_id: TagId
    origins: TagOrigins | None = None
    daily_cap: DailyCap | None = None


class Tag(msgspec.Struct):
    """A registered browser Tag."""

    tag_id: str
    partner_id: str
    partner: Annotated[str, Meta(description="The partner's name")]
    origins: list[str]
    daily_cap: Annotated[int | None, Meta(description="Requests per UTC day; null: no cap")]
    created_at: str


class TagList(msgspec.Struct):
    tags: Annotated[list[Tag], Meta(description="By tag_id")]
    truncated: Annotated[bool, Meta(description="More tags exist than limit allowed")]
