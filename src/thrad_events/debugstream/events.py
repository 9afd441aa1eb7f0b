"""The event a request becomes on the debugger's stream, and its bound in bytes.

One JSON object per request: when, which route, its request id, how it ended (`outcome`: ok,
duplicate, rejected, partial for a batch with refused items, failed for a 5xx), the status and
code, every problem found in a refused body, and the row as stored with its enrichment. Never
the API key nor the Authorization header: the row carries the key's label and id only.

PostgreSQL's NOTIFY takes at most 8000 bytes, so every event is fitted under MAX_EVENT_BYTES
on every bus: long texts are cut, then the rows and bodies are dropped, and `truncated` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from thrad_events.debugstream.capture import Capture
from thrad_events.errors import IngestError, Outcome
from thrad_events.instants import show_time

# What fits in a NOTIFY payload (8000 bytes) with the bus's frame (a kind byte and the partner).
MAX_EVENT_BYTES = 7800
# A refused body is shown up to this many bytes (the start of it says what went wrong).
BODY_PREVIEW_BYTES = 2048
_ACCEPTED = (Outcome.STORED, Outcome.DUPLICATE)

_encoder = msgspec.json.Encoder(decimal_format="string")


def verdict(outcome: Outcome, status: int) -> str:
    if outcome is Outcome.DUPLICATE:
        return "duplicate"
    if status >= 500:
        return "failed"
    if status >= 400:
        return "rejected"
    return "ok"


def _problems(error: IngestError) -> list[dict[str, str]]:
    return [{"field": d.field, "message": d.message} for d in error.details]


def _name_of(row: Mapping[str, Any] | None, body: bytes) -> str | None:
    """What the table shows as the request's name: the event's name or conversion's type."""
    if row is not None:
        name = row.get("event_name") or row.get("event_type")
        return name if isinstance(name, str) else None
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError):
        return None
    if isinstance(decoded, dict):
        name = decoded.get("event_name") or decoded.get("event_type")
        return name if isinstance(name, str) else None
    return None


def _preview(body: bytes) -> str:
    return body[:BODY_PREVIEW_BYTES].decode("utf-8", "replace")


def request_event(
    *,
    received_at: datetime,
    route: str,
    method: str,
    path: str,
    request_id: str,
    status: int,
    outcome: Outcome,
    error: IngestError | None,
    capture: Capture,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "request",
        "time": show_time(received_at),
        "route": route,
        "method": method,
        "path": path,
        "request_id": request_id,
        "partner_id": capture.partner_id or (error.partner_id if error else None),
        "key_id": capture.key_id or (error.key_id if error else None),
        "status": status,
        "code": outcome.value,
        "outcome": verdict(outcome, status),
        "event_name": None,
        "errors": [],
    }
    if error is not None:
        event["message"] = error.message
        event["errors"] = _problems(error)
        if capture.body:
            event["body"] = _preview(capture.body)
    if capture.items is not None and error is None:
        _add_items(event, capture)
        return event
    if outcome in _ACCEPTED and capture.row is not None:
        event["row"] = dict(capture.row)
        event["stored"] = outcome is Outcome.STORED
    event["event_name"] = _name_of(capture.row, capture.body)
    return event


def _add_items(event: dict[str, Any], capture: Capture) -> None:
    """A batch: each item's answer, the rows of the accepted ones, and the totals."""
    items: list[dict[str, Any]] = []
    totals = {"ok": 0, "duplicate": 0, "error": 0}
    for index, answer in enumerate(capture.items or ()):
        row = capture.item_rows.get(index)
        item: dict[str, Any] = {"index": index, "event_name": _name_of(row, b"")}
        if isinstance(answer, IngestError):
            totals["error"] += 1
            item.update(
                outcome="rejected", code=answer.outcome.value, message=answer.message,
                errors=_problems(answer),
            )  # fmt: skip
        else:
            kind = "ok" if answer is Outcome.STORED else "duplicate"
            totals[kind] += 1
            item.update(outcome=kind, code=answer.value, row=dict(row) if row else None)
        items.append(item)
    event["items"] = items
    event["totals"] = totals
    names = {item["event_name"] for item in items if item["event_name"]}
    event["event_name"] = names.pop() if len(names) == 1 else None
    if totals["error"] and (totals["ok"] or totals["duplicate"]):
        event["outcome"] = "partial"
    elif totals["error"]:
        event["outcome"] = "rejected"
    elif totals["duplicate"] and not totals["ok"]:
        event["outcome"] = "duplicate"
    if not items:
        event["errors"] = []


def _cut(value: Any, chars: int, entries: int) -> Any:
    """`value` with strings cut to `chars` and objects and arrays to `entries` entries."""
    if isinstance(value, str):
        return value if len(value) <= chars else value[:chars] + "…"
    if isinstance(value, Mapping):
        cut = {k: _cut(v, chars, entries) for k, v in list(value.items())[:entries]}
        if len(value) > entries:
            cut["…"] = f"{len(value) - entries} more"
        return cut
    if isinstance(value, list | tuple):
        out = [_cut(v, chars, entries) for v in value[:entries]]
        if len(value) > entries:
            out.append(f"… {len(value) - entries} more")
        return out
    return value


def encode_event(event: dict[str, Any]) -> bytes:
    """The event as JSON within MAX_EVENT_BYTES, cut further each time it does not fit."""
    payload = _encoder.encode(event)
    if len(payload) <= MAX_EVENT_BYTES:
        return payload
    event = dict(event, truncated=True)
    for chars, entries in ((256, 64), (64, 24)):
        payload = _encoder.encode(_cut(event, chars, entries))
        if len(payload) <= MAX_EVENT_BYTES:
            return payload
    # Too many items or fields even cut: what the request was and its first problems only.
    for name in ("row", "body", "items"):
        event.pop(name, None)
    event = _cut(event, 64, 10)
    payload = _encoder.encode(event)
    if len(payload) <= MAX_EVENT_BYTES:
        return payload
    event["errors"] = []
    event["message"] = _cut(event.get("message"), 200, 1)
    return _encoder.encode(event)
