"""validate_only: a body checked exactly as it would be stored, with nothing stored.

A request with `?validate_only=true` goes through admission (size, key, rate limit) and the
pipeline's own validation (Ingestor.event_row / conversion_row, so every problem is listed
at once as in a normal 400/422), then stops before the store: no row is written and no dedupe
key is taken. The answer adds warnings, naming what the server would silently change in a body
it accepts, and, for a conversion, whether its click exists for this key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from thrad_events.errors import IngestError, Unavailable
from thrad_events.ingest.normalize import SERVER_CHANNEL, STAMPED_PARAMS
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.schemas import CONVERSION_FIELDS, CollectRequest
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError
from thrad_events.store.records import ApiKeyRecord
from thrad_events.store.test_rows import converts

# (field, message); the field is None for a problem of the body as a whole (not JSON, ...).
Problem = tuple[str | None, str]
_COLLECT_FIELDS = frozenset(CollectRequest.__struct_fields__)
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Verdict:
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


def refused(error: IngestError) -> Verdict:
    """The problems a normal request would have been refused with."""
    if error.details:
        return Verdict(tuple((d.field, d.message) for d in error.details))
    return Verdict(((None, error.message),))


class Checker:
    """Checks bodies for validate_only with the pipeline's own row building."""

    def __init__(self, ingestor: Ingestor, store: Store) -> None:
        self._ingestor = ingestor
        self._store = store

    async def collect(self, body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> Verdict:
        try:
            row = self._ingestor.event_row(body, key, ctx)
        except IngestError as error:
            return refused(error)
        return Verdict(warnings=tuple(collect_warnings(_decode(bytes(body)), row)))

    async def conversion(self, body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> Verdict:
        try:
            row = self._ingestor.conversion_row(body, key, ctx)
        except IngestError as error:
            return refused(error)
        raw = _decode(bytes(body))
        errors = await self._click_problems(row["click_id"], key)
        warnings = conversion_warnings(raw, row, ctx.idempotency_key)
        return Verdict(tuple(errors), tuple(warnings))

    async def collect_batch(
        self, items: Sequence[bytes], key: ApiKeyRecord, ctx: RequestContext
    ) -> list[Verdict]:
        return [await self.collect(item, key, ctx) for item in items]

    async def conversion_batch(
        self, items: Sequence[bytes], key: ApiKeyRecord, ctx: RequestContext
    ) -> list[Verdict]:
        return [await self.conversion(item, key, ctx) for item in items]

    async def _click_problems(self, click_id: str, key: ApiKeyRecord) -> list[Problem]:
        try:
            click_is_test = await self._store.click_is_test(click_id)
        except StorageError as exc:
            raise Unavailable(str(exc)) from exc
        if click_is_test is None:
            return [("click_id", f"{click_id!r} is not a known click")]
        if not converts(click_is_test, key.test):
            return [("click_id", "is a test click: only a test key's conversions may name it")]
        return []


def collect_warnings(raw: Mapping[str, Any], row: Mapping[str, Any]) -> list[Problem]:
    """What storing this accepted collect body would silently change."""
    warnings: list[Problem] = [
        (name, "not a collect field: dropped, not stored")
        for name in raw
        if name not in _COLLECT_FIELDS
    ]
    tag_id = raw.get("tag_id")
    if row["tag_id"] == "site:unknown" and not (isinstance(tag_id, str) and tag_id.strip()):
        warnings.append(
            (
                "tag_id",
                "missing: stored as 'site:unknown' (no page_url, Origin or Referer header "
                "to take a host from)",
            )
        )
    timestamp = raw.get("timestamp")
    if isinstance(timestamp, float) and timestamp != row["timestamp"]:
        warnings.append(
            ("timestamp", f"has a fraction of a second: stored truncated to {row['timestamp']}")
        )
    channel = raw.get("channel")
    if channel is not None and channel != SERVER_CHANNEL:
        warnings.append(
            ("channel", f"collect always stores channel 'server': {channel!r} is replaced")
        )
    warnings.extend(_stamped_warnings(raw, row))
    return warnings


def conversion_warnings(
    raw: Mapping[str, Any], row: Mapping[str, Any], idempotency_key: str | None
) -> list[Problem]:
    """What storing this accepted conversion body would silently change."""
    warnings: list[Problem] = [
        (name, f"not a conversion field: stored (sanitised) under params.extra.{name}")
        for name in raw
        if name not in CONVERSION_FIELDS
    ]
    warnings.extend(_stamped_warnings(raw, row))
    if raw.get("event_id") is not None and idempotency_key and idempotency_key.strip():
        warnings.append(
            ("event_id", "not used for dedupe: the Idempotency-Key header is, when both are sent")
        )
    return warnings


def _stamped_warnings(raw: Mapping[str, Any], row: Mapping[str, Any]) -> list[Problem]:
    params = raw.get("params")
    if not isinstance(params, dict):
        return []
    stamped: Callable[[str], Any] = row["params"].get
    return [
        (f"params.{name}", f"set by the server: your value is replaced with {stamped(name)!r}")
        for name in STAMPED_PARAMS
        if name in params and params[name] != stamped(name)
    ]
