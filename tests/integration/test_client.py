"""The Python SDK (thrad_events.client) and `thrad-events send` against the real server process.

One server per module (and store): each test sends with a key of a partner of its own and reads
only that partner's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import subprocess
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import PYTHON, ServerProcess, clean_env, cli, export, real_click
from thrad_events.client import (
    AsyncThrad,
    AuthenticationError,
    BackgroundSender,
    ClickNotFoundError,
    Thrad,
    ValidationError,
)


class Proxy(httpx.BaseTransport):
    """Sits between the SDK and the real server and misbehaves as planned, attempt by attempt.

    503: answer 503 itself, the server never sees the request. drop: the connection dies before
    the request is sent. lost: the server gets and stores the request, its answer is lost.
    pass (and every attempt after the plan): through to the server.
    """

    def __init__(self, *plan: str) -> None:
        self.plan = list(plan)
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.plan[len(self.requests) - 1] if len(self.requests) <= len(self.plan) else "pass"
        if step == "503":
            body = {"error": {"code": "unavailable", "message": "proxy says no", "details": []}}
            return httpx.Response(503, json=body, headers={"Retry-After": "0"})
        if step == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        response = self.inner.handle_request(request)
        response.read()
        if step == "lost":
            response.close()
            raise httpx.ReadError("connection reset by peer")
        self.responses.append(response)
        return response

    def close(self) -> None:
        self.inner.close()

    def keys(self) -> list[str | None]:
        return [request.headers.get("idempotency-key") for request in self.requests]


def _thrad(server: ServerProcess, key: dict[str, Any], **options: Any) -> Thrad:
    options.setdefault("sleep", lambda seconds: None)  # retries here need no real waits
    return Thrad(api_key=key["api_key"], base_url=server.base_url, **options)


def _own_rows(server: ServerProcess, key: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The rows of `table` stored for the partner of `key`."""
    return export(server.database_url, table, "--partner", key["partner_id"])


@pytest.fixture
def thrad(module_server: ServerProcess, partner_key: dict[str, Any]) -> Iterator[Thrad]:
    with _thrad(module_server, partner_key) as client:
        yield client


@pytest.fixture
def click_id(module_server: ServerProcess) -> str:
    return real_click(module_server)


def test_a_conversion_on_a_real_click_is_stored_with_the_exact_digits(
    module_server: ServerProcess, partner_key: dict[str, Any], thrad: Thrad, click_id: str
) -> None:
    answer = thrad.conversion(
        click_id,
        datetime(2026, 2, 19, 18, 0),
        Decimal("49.990"),
        "usd",
        order_id="order-123",
        customer_tier="gold",
    )
    assert answer == "ok"
    again = thrad.conversion(
        click_id, "2026-02-19T18:00:00Z", Decimal("49.990"), "USD", order_id="order-123"
    )
    assert again == "duplicate"
    [row] = _own_rows(module_server, partner_key, "conversions")
    assert row["click_id"] == click_id
    assert row["conversion_value"] == "49.990"
    assert row["currency"] == "USD"
    assert row["conversion_time"] == "2026-02-19T18:00:00Z"
    assert row["order_id"] == "order-123"
    assert row["params"]["extra"] == {"customer_tier": "gold"}
    assert row["idempotency_key"].startswith("order-")


def test_a_flaky_path_is_retried_and_the_conversion_stored_once(
    module_server: ServerProcess, partner_key: dict[str, Any], click_id: str
) -> None:
    """Seed Retry Guidance: 503 and a dropped connection are retried with the same key."""
    proxy = Proxy("503", "drop")
    with _thrad(module_server, partner_key, transport=proxy) as client:
        answer = client.conversion(click_id, "2026-02-19T18:00:00Z", 49.99, "USD")
    assert answer == "ok"
    assert len(proxy.requests) == 3
    [sent_key, *others] = proxy.keys()
    assert sent_key is not None
    assert others == [sent_key, sent_key]
    [row] = _own_rows(module_server, partner_key, "conversions")
    assert row["idempotency_key"] == sent_key
    assert row["conversion_value"] == "49.99"


def test_a_lost_answer_is_retried_and_the_server_dedupes_the_repeat(
    module_server: ServerProcess, partner_key: dict[str, Any], click_id: str
) -> None:
    """The first attempt is stored but its answer lost: the retry is a duplicate, one row."""
    proxy = Proxy("lost")
    with _thrad(module_server, partner_key, transport=proxy) as client:
        answer = client.conversion(click_id, "2026-02-19T18:00:00Z", Decimal("10"), "EUR")
    assert answer == "duplicate"
    assert len(proxy.requests) == 2
    assert len(set(proxy.keys())) == 1
    assert len(_own_rows(module_server, partner_key, "conversions")) == 1


def test_a_collect_with_an_event_id_is_exact_under_retries(
    module_server: ServerProcess, partner_key: dict[str, Any]
) -> None:
    proxy = Proxy("lost", "503")
    with _thrad(module_server, partner_key, transport=proxy) as client:
        client.collect("page_view", tag_id="adv_001", event_id="pv-1", params={"step": "a"})
    assert len(proxy.requests) == 3
    [row] = _own_rows(module_server, partner_key, "events")
    assert (row["event_id"], row["channel"]) == ("pv-1", "server")


def test_a_422_is_not_retried_and_names_the_field(
    module_server: ServerProcess, partner_key: dict[str, Any], click_id: str
) -> None:
    proxy = Proxy()
    with (
        _thrad(module_server, partner_key, transport=proxy) as client,
        pytest.raises(ValidationError) as raised,
    ):
        client.conversion(click_id, "2026-02-19T18:00:00Z", 1, "XYZ")
    assert len(proxy.requests) == 1
    error = raised.value
    assert (error.status, error.code) == (422, "validation_error")
    assert "currency" in error.fields
    assert error.request_id == proxy.responses[0].headers.get("x-request-id")
    assert _own_rows(module_server, partner_key, "conversions") == []


def test_an_unknown_click_is_a_click_not_found_error(
    module_server: ServerProcess, partner_key: dict[str, Any]
) -> None:
    proxy = Proxy()
    with (
        _thrad(module_server, partner_key, transport=proxy) as client,
        pytest.raises(ClickNotFoundError) as raised,
    ):
        client.conversion("22222222-2222-4222-8222-222222222222", "2026-02-19T18:00:00Z", 1, "USD")
    assert raised.value.code == "click_not_found"
    assert len(proxy.requests) == 1


def test_a_wrong_key_is_an_authentication_error(module_server: ServerProcess) -> None:
    with (
        Thrad(api_key="not-a-key", base_url=module_server.base_url) as client,
        pytest.raises(AuthenticationError) as raised,
    ):
        client.collect("page_view")
    assert raised.value.status == 401


def test_the_background_sender_flushes_at_close_and_the_events_land(
    module_server: ServerProcess, partner_key: dict[str, Any], thrad: Thrad
) -> None:
    sender = BackgroundSender(thrad, flush_at=100, flush_interval_s=60)
    for i in range(25):
        assert sender.collect("items_added", tag_id="adv_001", event_id=f"e{i}", params={"n": i})
    sender.close()
    assert (sender.stats.sent, sender.stats.dropped) == (25, 0)
    rows = _own_rows(module_server, partner_key, "events")
    assert sorted(row["event_id"] for row in rows) == sorted(f"e{i}" for i in range(25))
    assert all(row["params"]["integration"] == "partner_s2s" for row in rows)


def test_the_async_client_reports_a_conversion(
    module_server: ServerProcess, partner_key: dict[str, Any], click_id: str
) -> None:
    async def run() -> str:
        async with AsyncThrad(
            api_key=partner_key["api_key"], base_url=module_server.base_url
        ) as client:
            await client.collect("checkout_started", event_id="c-1", tag_id="adv_001")
            return await client.conversion(
                click_id, "2026-02-19T18:00:00Z", Decimal("58.00"), "USD", event_id="evt-1"
            )

    assert asyncio.run(run()) == "ok"
    [row] = _own_rows(module_server, partner_key, "conversions")
    assert (row["conversion_value"], row["event_id"]) == ("58.00", "evt-1")
    assert len(_own_rows(module_server, partner_key, "events")) == 1


def test_send_collect_cli_prints_ok(
    module_server: ServerProcess, partner_key: dict[str, Any]
) -> None:
    out = cli(
        module_server.database_url,
        "send",
        "collect",
        "--api-key",
        partner_key["api_key"],
        "--base-url",
        module_server.base_url,
        "--json",
        '{"event_name": "page_view", "event_id": "cli-1", "tag_id": "adv_001"}',
    )
    assert out == '{"line":1,"status":"ok"}\n'
    [row] = _own_rows(module_server, partner_key, "events")
    assert row["event_id"] == "cli-1"


def test_send_conversion_cli_reads_json_lines_from_stdin(
    module_server: ServerProcess, partner_key: dict[str, Any], click_id: str
) -> None:
    conversion = {
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "currency": "USD",
        "order_id": "o-1",
    }
    lines = [
        json.dumps(conversion)[:-1] + ', "conversion_value": 49.990}',
        json.dumps({**conversion, "conversion_value": 49.99}),
        json.dumps({**conversion, "click_id": "unknown", "conversion_value": 1}),
    ]
    done = _send(
        module_server, partner_key, "conversion", input="\n".join(lines) + "\n", capture_output=True
    )
    assert done.returncode == 1, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0] == {"line": 1, "status": "ok"}
    assert answers[1] == {"line": 2, "status": "duplicate"}
    assert answers[2]["line"] == 3
    assert answers[2]["error"]["code"] == "click_not_found"
    [row] = _own_rows(module_server, partner_key, "conversions")
    assert row["conversion_value"] == "49.990"


def test_send_a_file_of_many_lines_through_the_batch_endpoint(
    module_server: ServerProcess, partner_key: dict[str, Any], tmp_path: Path
) -> None:
    """`send collect --file`: 1,203 lines (blank and broken ones among them) go to the server
    500 objects a request; every output line names its input line, in order; every valid event
    is stored once; a summary line ends stderr; without a terminal no progress bar is drawn."""
    lines = [json.dumps({"event_name": "bulk", "event_id": f"b-{n}"}) for n in range(1200)]
    lines[10] = ""
    lines[20] = "{not json"
    lines[30] = json.dumps({"event_name": 7})
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*lines, "", "", '{"event_name": "last"}']) + "\n")
    done = _send(module_server, partner_key, "collect", "--file", str(path), capture_output=True)
    assert done.returncode == 1, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [answer["line"] for answer in answers] == list(range(1, 1204))
    assert answers[10] == {"line": 11, "status": "blank"}
    assert answers[20]["error"]["code"] == "invalid_json"
    assert answers[30]["error"]["code"] == "validation_error"
    assert answers[1200] == {"line": 1201, "status": "blank"}
    assert answers[1202] == {"line": 1203, "status": "ok"}
    assert sum(answer.get("status") == "ok" for answer in answers) == 1198
    assert len(_own_rows(module_server, partner_key, "events")) == 1198
    assert done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[-1]], (
        "only the summary line on stderr without a terminal"
    )
    assert "1203 lines in" in done.stderr
    assert "1198 ok, 0 duplicate, 2 error, 3 blank" in done.stderr


def test_send_draws_progress_on_a_terminal(
    module_server: ServerProcess, partner_key: dict[str, Any], tmp_path: Path
) -> None:
    """On a terminal (stderr a pty) the progress bar is drawn there, never on stdout."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(f'{{"event_name": "tty", "event_id": "t-{n}"}}\n' for n in range(600)))
    controller, terminal = pty.openpty()
    try:
        done = _send(
            module_server,
            partner_key,
            "collect",
            "--file",
            str(path),
            env={"COLUMNS": "100", "TERM": "xterm"},
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        drawn = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 65536):
                drawn += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 600
    assert b"sending" in drawn  # the bar's description: drawn only on a terminal
    assert b"600 lines in" in drawn


def _send(
    server: ServerProcess,
    key: dict[str, Any],
    *args: str,
    env: dict[str, str] | None = None,
    **run: Any,
) -> subprocess.CompletedProcess[str]:
    """`thrad-events send ARGS` against the server with the key in the environment."""
    settings = {
        "THRAD_API_KEY": key["api_key"],
        "THRAD_BASE_URL": server.base_url,
        **(env or {}),
    }
    return subprocess.run(
        [PYTHON, "-m", "thrad_events", "send", *args],
        env=clean_env(server.database_url, settings),
        text=True,
        timeout=120,
        check=False,
        **run,
    )
