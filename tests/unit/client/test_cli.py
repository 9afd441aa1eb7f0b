"""client/cli.py: `thrad-events send` prints one server answer per input line."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.unit.client.conftest import Script, error_response
from thrad_events.client import Thrad
from thrad_events.client import cli as send_cli


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Every Thrad the CLI builds talks to this script instead of the network."""
    monkeypatch.delenv("THRAD_API_KEY", raising=False)
    monkeypatch.delenv("THRAD_BASE_URL", raising=False)
    recorded = Script()

    def scripted(**options: Any) -> Thrad:
        return Thrad(**options, transport=httpx.MockTransport(recorded), sleep=lambda s: None)

    monkeypatch.setattr(send_cli, "Thrad", scripted)
    return recorded


def _run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(send_cli.send, list(args), input=stdin, env=env)


def test_send_collect_json_prints_ok_for_a_204(script: Script) -> None:
    script.steps = [httpx.Response(204)]
    result = _run("collect", "--api-key", "k", "--json", '{"event_name": "page_view"}')
    assert result.exit_code == 0, result.output
    assert result.output == '{"status":"ok"}\n'
    [request] = script.requests
    assert str(request.url) == "http://127.0.0.1:8080/v1/api/collect"
    assert request.headers["authorization"] == "Bearer k"


def test_send_conversion_keeps_the_digits_and_uses_the_given_key(script: Script) -> None:
    script.steps = [httpx.Response(200, json={"status": "duplicate"})]
    conversion = (
        '{"click_id": "c", "conversion_time": "2026-02-19T18:00:00Z",'
        ' "conversion_value": 49.990, "currency": "USD"}'
    )
    result = _run(
        "conversion",
        "--json",
        conversion,
        "--idempotency-key",
        "order-1",
        env={"THRAD_API_KEY": "k", "THRAD_BASE_URL": "https://events.example"},
    )
    assert result.exit_code == 0, result.output
    assert result.output == '{"status":"duplicate"}\n'
    [request] = script.requests
    assert str(request.url) == "https://events.example/v1/api/conversion"
    assert request.headers["idempotency-key"] == "order-1"
    assert b'"conversion_value":49.990,' in request.content


def test_stdin_lines_each_get_their_answer_and_a_failure_sets_the_exit_status(
    script: Script,
) -> None:
    details = [{"field": "timestamp", "message": "bad"}]
    script.steps = [
        httpx.Response(204),
        error_response(422, "validation_error", "timestamp: bad", details=details),
        httpx.Response(204),
    ]
    inputs = ['{"event_name": "a"}', "", '{"event_name": "b", "timestamp": "x"}', "not json"]
    lines = "\n".join([*inputs, "[1]", '{"event_name": "c"}', ""])
    result = _run("collect", "--api-key", "k", stdin=lines)
    assert result.exit_code == 1
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert answers[0] == {"status": "ok"}
    assert answers[1]["error"]["code"] == "validation_error"
    assert answers[1]["error"]["details"] == details
    assert answers[2]["error"]["code"] == "invalid_json"
    assert answers[3]["error"]["code"] == "invalid_json"
    assert answers[4] == {"status": "ok"}
    assert script.attempts == 3


def test_a_missing_api_key_is_a_usage_error(script: Script) -> None:
    result = _run("collect", "--json", "{}")
    assert result.exit_code == 2
    assert "THRAD_API_KEY" in result.output
    assert script.attempts == 0


def test_idempotency_key_needs_one_json_conversion(script: Script) -> None:
    result = _run("conversion", "--api-key", "k", "--idempotency-key", "x", stdin="{}\n")
    assert result.exit_code == 2
    assert script.attempts == 0
