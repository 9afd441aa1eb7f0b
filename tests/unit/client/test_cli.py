"""client/cli.py: `thrad-events send` prints one answer per input line, naming the line."""

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
    assert result.output.splitlines()[0] == '{"line":1,"status":"ok"}'
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
    assert result.output.splitlines()[0] == '{"line":1,"status":"duplicate"}'
    [request] = script.requests
    assert str(request.url) == "https://events.example/v1/api/conversion"
    assert request.headers["idempotency-key"] == "order-1"
    assert b'"conversion_value":49.990,' in request.content


def test_stdin_lines_go_in_one_batch_and_each_line_gets_its_numbered_answer(
    script: Script,
) -> None:
    """Blank lines are counted and answered `blank`, lines that are not JSON objects are
    answered locally, the rest go in one batch request; answers come out in input order and
    a failed line sets the exit status."""
    details = [{"field": "timestamp", "message": "bad"}]
    refused = {"code": "validation_error", "message": "timestamp: bad", "details": details}
    script.steps = [
        httpx.Response(
            200,
            json={
                "results": [
                    {"index": 0, "status": "ok"},
                    {"index": 1, "status": "error", "error": refused},
                    {"index": 2, "status": "duplicate"},
                ],
                "totals": {"ok": 1, "duplicate": 1, "error": 1},
            },
        )
    ]
    inputs = ['{"event_name": "a"}', "", '{"event_name": "b", "timestamp": "x"}', "not json"]
    lines = "\n".join([*inputs, "[1]", '{"event_name": "c"}', ""])
    result = _run("collect", "--api-key", "k", stdin=lines)
    assert result.exit_code == 1
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [answer["line"] for answer in answers] == [1, 2, 3, 4, 5, 6]
    assert answers[0] == {"line": 1, "status": "ok"}
    assert answers[1] == {"line": 2, "status": "blank"}
    assert answers[2]["error"]["code"] == "validation_error"
    assert answers[2]["error"]["details"] == details
    assert answers[3]["error"]["code"] == "invalid_json"
    assert answers[4]["error"]["code"] == "invalid_json"
    assert answers[5] == {"line": 6, "status": "duplicate"}
    [request] = script.requests
    assert str(request.url).endswith("/v1/api/collect/batch")
    assert [item["event_name"] for item in json.loads(request.content)["events"]] == list("abc")
    assert "6 lines" in result.stderr
    assert "1 ok, 1 duplicate, 3 error, 1 blank" in result.stderr


def test_more_than_500_lines_are_sent_500_at_a_time(script: Script) -> None:
    def batch_of(count: int) -> httpx.Response:
        results = [{"index": i, "status": "ok"} for i in range(count)]
        return httpx.Response(
            200, json={"results": results, "totals": {"ok": count, "duplicate": 0, "error": 0}}
        )

    script.steps = [batch_of(500), batch_of(500), batch_of(1)]
    lines = "".join(f'{{"event_name": "e{i}"}}\n' for i in range(1001))
    result = _run("collect", "--api-key", "k", stdin=lines)
    assert result.exit_code == 0, result.output
    assert [len(json.loads(r.content)["events"]) for r in script.requests] == [500, 500, 1]
    numbers = [json.loads(line)["line"] for line in result.stdout.splitlines()]
    assert numbers == list(range(1, 1002))


def test_a_refused_batch_answers_each_of_its_lines(script: Script) -> None:
    script.steps = [error_response(401, "unauthorized", "API key is not valid")]
    result = _run("collect", "--api-key", "k", stdin='{"event_name": "a"}\n{"event_name": "b"}\n')
    assert result.exit_code == 1
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["line"], a["error"]["code"]) for a in answers] == [
        (1, "unauthorized"),
        (2, "unauthorized"),
    ]


def test_a_missing_api_key_is_a_usage_error(script: Script) -> None:
    result = _run("collect", "--json", "{}")
    assert result.exit_code == 2
    assert "THRAD_API_KEY" in result.output
    assert script.attempts == 0


def test_idempotency_key_needs_one_json_conversion(script: Script) -> None:
    result = _run("conversion", "--api-key", "k", "--idempotency-key", "x", stdin="{}\n")
    assert result.exit_code == 2
    assert script.attempts == 0
