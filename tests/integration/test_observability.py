"""Request ids, JSON logs and Prometheus metrics, as an operator sees them.

Most tests share one server per module (and store), each with a key of a partner of its own;
those that need other settings start servers of their own.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, api_client, cli, create_key


def test_every_answer_carries_a_request_id_and_a_sane_client_id_is_kept(
    partner_client: httpx.Client,
) -> None:
    minted = partner_client.post("/v1/api/collect", json={"event_name": "x"})
    assert len(minted.headers["X-Request-ID"]) == 32
    kept = partner_client.post(
        "/v1/api/collect", json={"event_name": 1}, headers={"X-Request-ID": "trace-42"}
    )
    assert kept.headers["X-Request-ID"] == "trace-42"
    hostile = partner_client.post(
        "/v1/api/collect", json={"event_name": "x"}, headers={"X-Request-ID": "a b<script>"}
    )
    assert hostile.headers["X-Request-ID"] != "a b<script>"


def test_logs_are_json_lines_and_never_hold_the_api_key(
    module_server: ServerProcess, partner_client: httpx.Client, partner_key: dict[str, str]
) -> None:
    partner_client.post("/v1/api/collect", content=b"{broken")
    partner_client.post("/v1/api/collect", json={"event_name": "ok"})
    log = module_server.log()
    assert partner_key["api_key"] not in log
    assert "Bearer" not in log
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            assert {"ts", "level", "message"} <= set(entry)


def _outcomes(server: ServerProcess) -> dict[str, float]:
    """The collect route's outcome counters as /metrics shows them now (absent: none yet)."""
    text = httpx.get(f"{server.base_url}/metrics").text
    found = re.findall(
        r'^thrad_outcomes_total\{outcome="(\w+)",route="collect"\} (\S+)$', text, re.M
    )
    return {outcome: float(value) for outcome, value in found}


def test_metrics_count_outcomes_by_route(
    module_server: ServerProcess, partner_client: httpx.Client
) -> None:
    """Each outcome counts exactly once per request (the module's earlier tests counted too:
    the counters are compared with theirs before this test's requests)."""
    before = _outcomes(module_server)
    partner_client.post("/v1/api/collect", json={"event_name": "a", "event_id": "1", "tag_id": "t"})
    partner_client.post("/v1/api/collect", json={"event_name": "a", "event_id": "1", "tag_id": "t"})
    partner_client.post("/v1/api/collect", json={"event_name": 5})
    after = _outcomes(module_server)
    added = {outcome: after[outcome] - before.get(outcome, 0.0) for outcome in after}
    assert {outcome: n for outcome, n in added.items() if n} == {
        "stored": 1.0,
        "duplicate": 1.0,
        "validation_error": 1.0,
    }
    text = httpx.get(f"{module_server.base_url}/metrics").text
    assert "thrad_write_batch_rows_bucket" in text
    assert "thrad_request_duration_seconds_bucket" in text


@pytest.mark.long
def test_metrics_of_two_workers_are_summed(tmp_path: Path) -> None:
    """A server of its own: two workers, and counters that only this test's requests moved."""
    database_url = f"sqlite:///{tmp_path / 'm.db'}"
    server = ServerProcess(database_url, tmp_path / "m.log", workers=2)
    try:
        key = create_key(database_url)
        # Fresh connections spread over both workers; whichever answers the scrape sees all.
        for _ in range(40):
            httpx.post(
                f"{server.base_url}/v1/api/collect",
                json={"event_name": "a", "event_id": uuid.uuid4().hex},
                headers={"Authorization": f"Bearer {key['api_key']}"},
            )
        for _ in range(4):
            text = httpx.get(f"{server.base_url}/metrics").text
            assert 'thrad_outcomes_total{outcome="stored",route="collect"} 40.0' in text
    finally:
        server.stop()


def test_access_log_is_off_by_default_and_one_json_line_per_request_with_the_flag(
    database_url: str, tmp_path: Path
) -> None:
    """THRAD_ACCESS_LOG=1 adds one line per request (method, path, status), never the key;
    without it no request line is logged. (Servers of their own: the setting is only theirs.)"""
    for flag in ("0", "1"):
        server = ServerProcess(
            database_url, tmp_path / f"server-{flag}.log", env={"THRAD_ACCESS_LOG": flag}
        )
        try:
            key = create_key(database_url, "acme", "access")
            answer = httpx.post(
                f"{server.base_url}/v1/api/collect?probe=access",
                json={"event_name": "a"},
                headers={"Authorization": f"Bearer {key['api_key']}"},
            )
            assert answer.status_code == 204
        finally:
            server.stop()
        entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        access = [e for e in entries if e.get("logger") == "uvicorn.access"]
        if flag == "0":
            assert access == []
            continue
        [line] = [e for e in access if "/v1/api/collect?probe=access" in str(e["message"])]
        assert "POST" in str(line["message"])
        assert "204" in str(line["message"])
        assert key["api_key"] not in server.log()


def test_each_rejected_request_is_one_info_line_naming_partner_key_route_and_code(
    module_server: ServerProcess, partner_client: httpx.Client, partner_key: dict[str, str]
) -> None:
    """At the default level an operator sees every refusal: one line with the route, status,
    code, partner, key id and request id, never the key or the body."""
    refused = partner_client.post(
        "/v1/api/collect",
        content=b'{"event_name": 5, "secret_body": "s3cr3t"}',
        headers={"X-Request-ID": "rejected-1"},
    )
    assert refused.status_code == 422
    unknown = httpx.post(
        f"{module_server.base_url}/v1/api/collect",
        json={"event_name": "a"},
        headers={"Authorization": "Bearer thr_not-a-key", "X-Request-ID": "rejected-2"},
    )
    assert unknown.status_code == 401
    lines = [json.loads(line) for line in module_server.log().splitlines() if line.startswith("{")]
    rejected = {
        line["request_id"]: line for line in lines if line.get("message") == "request rejected"
    }
    assert rejected["rejected-1"]["level"] == "info"
    assert {k: rejected["rejected-1"][k] for k in ("route", "status", "code", "key_id")} == {
        "route": "collect",
        "status": 422,
        "code": "validation_error",
        "key_id": partner_key["key_id"],
    }
    assert rejected["rejected-1"]["partner_id"] == partner_key["partner_id"]
    assert rejected["rejected-2"]["code"] == "unauthorized"
    assert rejected["rejected-2"]["key_id"] is None
    assert "s3cr3t" not in module_server.log()
    assert partner_key["api_key"] not in module_server.log()


def test_a_revoked_keys_refusal_names_its_partner_and_key_in_the_log_line(
    module_server: ServerProcess, partner: str
) -> None:
    """An operator can see who still sends with a revoked key: its 401's line names the key's
    partner and key id (never the key)."""
    key = create_key(module_server.database_url, partner, "to-revoke")
    cli(module_server.database_url, "keys", "revoke", key["key_id"])
    refused = httpx.post(
        f"{module_server.base_url}/v1/api/collect",
        json={"event_name": "a"},
        headers={"Authorization": f"Bearer {key['api_key']}", "X-Request-ID": "revoked-1"},
    )
    assert refused.status_code == 401
    lines = [json.loads(line) for line in module_server.log().splitlines() if line.startswith("{")]
    [line] = [e for e in lines if e.get("request_id") == "revoked-1"]
    assert line["message"] == "request rejected"
    assert (line["status"], line["code"]) == (401, "unauthorized")
    assert (line["partner_id"], line["key_id"]) == (key["partner_id"], key["key_id"])
    assert key["api_key"] not in module_server.log()


def test_under_a_flood_rejection_lines_are_sampled_and_every_skipped_one_counted(
    database_url: str, server: ServerProcess
) -> None:
    """A flood of refused requests writes at most 50 lines a second; the next line written
    says how many were skipped (`skipped`), so lines and skipped counts add up to every refusal.
    600 requests sent one after another cannot spread over the 12 s that would need no
    sampling."""
    key = create_key(database_url, "acme", "flood", "--rate-limit", "1000000")
    sent = 600
    with api_client(server, key["api_key"]) as http:
        for number in range(sent):
            answer = http.post(
                "/v1/api/collect",
                content=b'{"event_name": 5}',
                headers={"X-Request-ID": f"flood-{number}"},
            )
            assert answer.status_code == 422
        time.sleep(1.1)  # a new second: the next refusal is written, with the count skipped
        answer = http.post(
            "/v1/api/collect", content=b"{}", headers={"X-Request-ID": "after-flood"}
        )
        assert answer.status_code == 400

    def rejected() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("message") == "request rejected"]

    deadline = time.monotonic() + 10
    while not any(line["request_id"] == "after-flood" for line in rejected()):
        assert time.monotonic() < deadline, "the refusal after the flood was not logged"
        time.sleep(0.1)
    lines = rejected()
    assert all(line["key_id"] == key["key_id"] for line in lines)
    assert len(lines) < sent, "every refusal of the flood was written"
    assert len(lines) + sum(line.get("skipped", 0) for line in lines) == sent + 1
    assert lines[-1]["request_id"] == "after-flood"
