"""What goes over the wire: request bodies in exact JSON, the Idempotency-Key, parsed answers.

Money stays exact: a Decimal is written with its own digits (Decimal("49.990") is the JSON number
49.990), a float with its shortest repr, so the server stores what the caller meant. The standard
json module cannot write a Decimal as a number, hence the small encoder here.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx

from thrad_events.client.errors import APIError, ThradError, error_details, error_for_code

MAX_BATCH_ITEMS = 500
DEFAULT_EVENT_TYPE = "purchase_completed"

ConversionStatus = Literal["ok", "duplicate"]
ItemStatus = Literal["ok", "duplicate", "error"]
Money = Decimal | int | float


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; Decimal as a number with its exact digits; NaN and Infinity refused."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode()


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite JSON number: {value!r}")
        out.append(float.__repr__(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite JSON number: {value!r}")
        # str() of a finite Decimal is always a valid JSON number: 49.990, -0, 1E+2, 0E-7.
        out.append(str(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, datetime):
        out.append(json.dumps(format_time(value)))
    else:
        raise TypeError(f"cannot send a {type(value).__name__} as JSON: {value!r}")


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _without_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    # The server treats null as omitted; leaving it out keeps bodies small.
    return {name: value for name, value in fields.items() if value is not None}


def collect_body(event_name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The body of one collect; a datetime `timestamp` becomes Unix seconds."""
    if not isinstance(event_name, str):
        raise TypeError(f"event_name must be a string, not {type(event_name).__name__}")
    body = {"event_name": event_name, **_without_none(fields)}
    timestamp = body.get("timestamp")
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        body["timestamp"] = int(timestamp.timestamp())
    return body


def conversion_body(
    click_id: str,
    conversion_time: datetime | str,
    conversion_value: Money,
    currency: str,
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The body of one conversion, with the four required fields checked for their types."""
    if isinstance(conversion_value, bool) or not isinstance(
        conversion_value, Decimal | int | float
    ):
        raise TypeError(
            f"conversion_value must be a Decimal, int or float, "
            f"not {type(conversion_value).__name__}"
        )
    if isinstance(conversion_value, Decimal | float) and not _finite(conversion_value):
        raise ValueError(f"conversion_value must be finite, not {conversion_value!r}")
    if isinstance(conversion_time, datetime):
        time_text = format_time(conversion_time)
    elif isinstance(conversion_time, str):
        time_text = conversion_time
    else:
        raise TypeError(
            f"conversion_time must be a datetime or an ISO-8601 string, "
            f"not {type(conversion_time).__name__}"
        )
    return {
        "click_id": click_id,
        "conversion_time": time_text,
        "conversion_value": conversion_value,
        "currency": currency,
        **_without_none(fields),
    }


def _finite(value: Decimal | float) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def idempotency_key_for(body: Mapping[str, Any], given: str | None) -> str:
    """The Idempotency-Key of one logical conversion, sent unchanged on every attempt.

    The caller's key first. Else the body's event_id: the server dedupes on it when no header is
    sent, and a header takes precedence over it, so any other header would defeat it. Else one
    derived from order_id with click_id and event_type, the same triple the server dedupes
    orders on, so a caller who repeats the call gets the same key. Else a fresh uuid4.
    """
    if given is not None:
        return given
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id.strip():
        return event_id
    order_id = body.get("order_id")
    if isinstance(order_id, str) and order_id.strip():
        event_type = body.get("event_type") or DEFAULT_EVENT_TYPE
        triple = "\x1f".join((str(body.get("click_id")), str(event_type), order_id))
        return "order-" + hashlib.sha256(triple.encode()).hexdigest()[:40]
    return str(uuid.uuid4())


def batch_conversion_items(conversions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Conversion batch items made safe to retry.

    A batch has one Idempotency-Key header for all its items, so none is sent; an item without
    event_id or order_id gets an event_id minted once per call, which the server dedupes on.
    """
    items: list[dict[str, Any]] = []
    for conversion in conversions:
        item = _without_none(conversion)
        if not item.get("event_id") and not item.get("order_id"):
            item["event_id"] = str(uuid.uuid4())
        items.append(_normalized_conversion(item))
    return items


def _normalized_conversion(item: dict[str, Any]) -> dict[str, Any]:
    moment = item.get("conversion_time")
    if isinstance(moment, datetime):
        item["conversion_time"] = format_time(moment)
    return item


def batch_collect_items(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for event in events:
        fields = dict(event)
        name = fields.pop("event_name", None)
        items.append(collect_body(name, fields) if isinstance(name, str) else _without_none(event))
    return items


def check_batch_size(items: Sequence[Any], field: str) -> None:
    if not items:
        raise ValueError(f"{field}: a batch needs at least one item")
    if len(items) > MAX_BATCH_ITEMS:
        raise ValueError(f"{field}: at most {MAX_BATCH_ITEMS} items per batch, got {len(items)}")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise APIError(
            f"unexpected answer body: {response.text[:200]!r}",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
    return parsed


def conversion_status(response: httpx.Response) -> ConversionStatus:
    status = _json_object(response).get("status")
    if status == "ok":
        return "ok"
    if status == "duplicate":
        return "duplicate"
    raise APIError(
        f"unexpected conversion status: {status!r}",
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
    )


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """The server's answer for one item; `error` is the exception the single call would raise."""

    index: int
    status: ItemStatus
    error: ThradError | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One result per item, in the order sent, and the totals."""

    results: list[BatchItemResult]
    ok: int
    duplicate: int
    error: int
    request_id: str | None = None

    @property
    def errors(self) -> list[BatchItemResult]:
        return [result for result in self.results if result.status == "error"]


def batch_result(response: httpx.Response, sent: int) -> BatchResult:
    """Read a batch answer; anything that does not match what was sent is an APIError."""
    request_id = response.headers.get("x-request-id")
    body = _json_object(response)
    raw_results = body.get("results")
    totals = body.get("totals")
    if (
        not isinstance(raw_results, list)
        or len(raw_results) != sent
        or not isinstance(totals, dict)
    ):
        raise APIError(
            f"unexpected batch answer for {sent} items: {response.text[:200]!r}",
            status=response.status_code,
            request_id=request_id,
        )
    results: list[BatchItemResult] = []
    for position, raw in enumerate(raw_results):
        status = raw.get("status") if isinstance(raw, dict) else None
        if status not in ("ok", "duplicate", "error"):
            raise APIError(f"unexpected batch item: {raw!r}", request_id=request_id)
        index = raw.get("index", position)
        error = _item_error(raw.get("error"), request_id) if status == "error" else None
        results.append(
            BatchItemResult(index if isinstance(index, int) else position, status, error)
        )
    counts = {name: sum(r.status == name for r in results) for name in ("ok", "duplicate", "error")}
    return BatchResult(
        results,
        ok=_count(totals, "ok", counts),
        duplicate=_count(totals, "duplicate", counts),
        error=_count(totals, "error", counts),
        request_id=request_id,
    )


def _count(totals: Mapping[str, Any], name: str, counted: Mapping[str, int]) -> int:
    value = totals.get(name)
    return value if isinstance(value, int) else counted[name]


def _item_error(raw: Any, request_id: str | None) -> ThradError:
    if not isinstance(raw, dict):
        return APIError("batch item failed without an error body", request_id=request_id)
    code = str(raw.get("code") or "error")
    return error_for_code(
        code,
        str(raw.get("message") or code),
        error_details(raw.get("details")),
        request_id=request_id,
        body={"error": raw},
    )
