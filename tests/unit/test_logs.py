"""logs.py: rejected requests are logged one INFO line each, sampled under a flood."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from thrad_events.logs import RejectionLog, configure_logging, request_id


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The service's own JSON log configuration writing into a buffer, undone afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO")
    buffer = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    """The lines written since the last call."""
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    buffer.seek(0)
    buffer.truncate()
    return lines


def test_a_rejection_is_one_info_line_with_route_status_code_partner_key_and_request_id(
    json_logs: io.StringIO,
) -> None:
    token = request_id.set("rid-1")
    try:
        RejectionLog().rejected(
            route="collect", status=422, code="validation_error", partner_id="p1", key_id="k1"
        )
    finally:
        request_id.reset(token)
    [line] = _lines(json_logs)
    assert line["level"] == "info"
    assert line["message"] == "request rejected"
    assert {k: line[k] for k in ("route", "status", "code", "partner_id", "key_id")} == {
        "route": "collect",
        "status": 422,
        "code": "validation_error",
        "partner_id": "p1",
        "key_id": "k1",
    }
    assert line["request_id"] == "rid-1"


def test_under_a_flood_lines_are_sampled_and_the_skipped_ones_counted(
    json_logs: io.StringIO,
) -> None:
    clock = Clock()
    rejections = RejectionLog(per_second=5, clock=clock)
    for _ in range(25):
        rejections.rejected(route="collect", status=401, code="unauthorized")
    assert len(_lines(json_logs)) == 5
    clock.now += 1.0
    rejections.rejected(route="collect", status=401, code="unauthorized")
    [line] = _lines(json_logs)
    assert line["skipped"] == 20
    rejections.rejected(route="collect", status=401, code="unauthorized")
    [line] = _lines(json_logs)
    assert "skipped" not in line
