"""debugstream/events.py: what a request becomes on the debugger's stream, within the bus's
8000-byte payload (PostgreSQL NOTIFY), whatever the client sent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from thrad_events.debugstream.capture import Capture
from thrad_events.debugstream.events import MAX_EVENT_BYTES, encode_event, request_event
from thrad_events.errors import FieldProblem, MissingField, Outcome


def event_for(capture: Capture, outcome: Outcome, status: int, error: Any = None) -> Any:
    return request_event(
        received_at=datetime(2026, 2, 19, 18, 0, tzinfo=UTC),
        route="collect",
        method="POST",
        path="/v1/api/collect",
        request_id="rid-1",
        status=status,
        outcome=outcome,
        error=error,
        capture=capture,
    )


def test_an_accepted_request_carries_its_stored_row() -> None:
    row = {"event_name": "page_view", "conversion_value": Decimal("49.990"), "geo_country": "GB"}
    capture = Capture(partner_id="ptn_1", key_id="key_1", body=b"{}", row=row)
    event = msgspec.json.decode(encode_event(event_for(capture, Outcome.STORED, 204)))
    assert event["outcome"] == "ok"
    assert event["row"]["conversion_value"] == "49.990"
    assert event["stored"] is True
    assert event["time"] == "2026-02-19T18:00:00Z"
    assert "body" not in event


def test_a_refused_request_carries_every_problem_and_the_start_of_its_body() -> None:
    error = MissingField(
        "event_name: required field is missing (and 1 more problem)",
        (FieldProblem("event_name", "required field is missing"),
         FieldProblem("tag_id", "must be a string")),
    )  # fmt: skip
    error.partner_id = "ptn_1"
    capture = Capture(body=b'{"tag_id": 7, "pad": "' + b"x" * 5000 + b'"}')
    event = event_for(capture, Outcome.MISSING_FIELD, 400, error)
    assert event["outcome"] == "rejected"
    assert event["partner_id"] == "ptn_1"
    assert [e["field"] for e in event["errors"]] == ["event_name", "tag_id"]
    assert len(event["body"]) == 2048


def test_an_event_too_large_for_the_bus_is_cut_and_says_so() -> None:
    params = {f"k{n}": "v" * 500 for n in range(200)}
    capture = Capture(partner_id="ptn_1", row={"event_name": "e" * 3000, "params": params})
    payload = encode_event(event_for(capture, Outcome.STORED, 204))
    assert len(payload) <= MAX_EVENT_BYTES
    event = msgspec.json.decode(payload)
    assert event["truncated"] is True
    assert event["request_id"] == "rid-1"


def test_a_full_batch_still_fits() -> None:
    rows = {i: {"event_name": f"name-{i}", "params": {"a": "b" * 100}} for i in range(500)}
    capture = Capture(partner_id="ptn_1", items=[Outcome.STORED] * 500, item_rows=rows)
    payload = encode_event(event_for(capture, Outcome.STORED, 200))
    assert len(payload) <= MAX_EVENT_BYTES
    event = msgspec.json.decode(payload)
    assert event["totals"] == {"ok": 500, "duplicate": 0, "error": 0}
    assert event["truncated"] is True
