"""Test keys and test clicks: `keys create --test`, POST /v1/api/test/clicks, `clicks create`.

A test key's rows are stored flagged test, never dedupe against live rows, stay out of reports
and exports unless asked (include_test=true, --include-test), and are deleted after
THRAD_TEST_RETENTION_DAYS. Every test runs on SQLite and PostgreSQL, most on one server per
module (and store) with keys of partners of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.server import (
    ServerProcess,
    api_client,
    cli,
    create_key,
    export,
    real_click,
    running_server,
)

SECRET = "a-click-secret-of-the-tests"
SECRET_ENV = {"THRAD_CLICK_SECRET": SECRET}
CONVERSION = {
    "conversion_time": "2026-02-19T18:00:00Z",
    "conversion_value": 49.99,
    "currency": "USD",
}


@pytest.fixture(scope="module")
def shared_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The module's server (one per store), whose click secret the tests know: each test's keys
    are of a partner of its own, and it reads only its own rows."""
    log_path = tmp_path_factory.mktemp("test-keys") / "server.log"
    with running_server(shared_database_url, log_path, env=SECRET_ENV) as process:
        yield process


def _test_key(database_url: str, partner: str = "acme") -> dict[str, Any]:
    return create_key(database_url, partner, "sandbox", "--test")


def test_a_test_key_secret_starts_thr_test_and_keys_list_says_test(
    module_server: ServerProcess, partner: str
) -> None:
    test_key = _test_key(module_server.database_url, partner)
    live_key = create_key(module_server.database_url, partner)
    assert test_key["api_key"].startswith("thr_test_")
    assert test_key["test"] is True
    assert not live_key["api_key"].startswith("thr_test_")
    listed = {
        entry["key_id"]: entry
        for entry in map(
            json.loads, cli(module_server.database_url, "keys", "list", "--json").splitlines()
        )
    }
    assert listed[test_key["key_id"]]["test"] is True
    assert listed[live_key["key_id"]]["test"] is False
    assert listed[test_key["key_id"]]["key_prefix"].startswith("thr_test_")
    lines = cli(module_server.database_url, "keys", "list").splitlines()
    test_at = lines[0].index("TEST")
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert by_id[test_key["key_id"]][test_at:].strip() == "yes"
    assert by_id[live_key["key_id"]][test_at:].strip() == "no"


def test_test_rows_are_flagged_and_exported_only_when_asked(
    module_server: ServerProcess, partner: str
) -> None:
    test_key, live_key = (
        _test_key(module_server.database_url, partner),
        create_key(module_server.database_url, partner),
    )
    event_id = f"ev-{uuid.uuid4()}"
    body = {"event_name": "page_view", "tag_id": "t1", "event_id": event_id}
    with (
        api_client(module_server, test_key["api_key"]) as test_http,
        api_client(module_server, live_key["api_key"]) as live_http,
    ):
        assert test_http.post("/v1/api/collect", json=body).status_code == 204
        # The same (tag_id, event_id) from a live key is a different event: stored too.
        assert live_http.post("/v1/api/collect", json=body).status_code == 204
        # And a repeat within each dedupe space is still a repeat.
        assert test_http.post("/v1/api/collect", json=body).status_code == 204
        assert live_http.post("/v1/api/collect", json=body).status_code == 204
    default = [
        row for row in export(module_server.database_url, "events") if row["event_id"] == event_id
    ]
    assert [row["test"] for row in default] == [False]
    everything = [
        row
        for row in export(module_server.database_url, "events", "--include-test")
        if row["event_id"] == event_id
    ]
    assert sorted(row["test"] for row in everything) == [False, True]


def test_conversions_of_test_and_live_keys_never_dedupe_against_each_other(
    module_server: ServerProcess, partner: str
) -> None:
    test_key, live_key = (
        _test_key(module_server.database_url, partner),
        create_key(module_server.database_url, partner),
    )
    click_id = real_click(module_server, env=SECRET_ENV)
    body = {**CONVERSION, "click_id": click_id, "order_id": "order-1"}
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4()}"}
    with (
        api_client(module_server, test_key["api_key"]) as test_http,
        api_client(module_server, live_key["api_key"]) as live,
    ):
        # A test key converts a live click (a followed click link, tried in staging).
        first = test_http.post("/v1/api/conversion", json=body, headers=headers)
        assert first.json() == {"status": "ok"}
        assert live.post("/v1/api/conversion", json=body, headers=headers).json() == {
            "status": "ok"
        }
        again = test_http.post("/v1/api/conversion", json=body, headers=headers)
        assert again.json() == {"status": "duplicate"}
        batch = test_http.post(
            "/v1/api/conversion/batch", json={"conversions": [{**body, "event_id": "e"}]}
        )
        # (click_id, event_type, order_id) matches the test conversion above: a duplicate.
        assert batch.json()["results"][0]["status"] == "duplicate"
    rows = [
        row
        for row in export(module_server.database_url, "conversions", "--include-test")
        if row["click_id"] == click_id
    ]
    assert sorted(row["test"] for row in rows) == [False, True]


def test_a_test_key_creates_test_clicks_signed_like_the_redirect(
    module_server: ServerProcess, partner: str
) -> None:
    test_key = _test_key(module_server.database_url, partner)
    with api_client(module_server, test_key["api_key"]) as http:
        created = http.post(
            "/v1/api/test/clicks", json={"campaign_id": "c1", "ad_id": "a1", "bid_id": "b1"}
        )
        assert created.status_code == 201, created.text
        click = created.json()
        assert set(click) == {"click_id", "thrad_exp", "thrad_sig"}
        assert uuid.UUID(click["click_id"]).version == 4
        assert click["thrad_exp"] > time.time()
        expected = hmac.new(
            SECRET.encode(), f"{click['click_id']}.{click['thrad_exp']}".encode(), hashlib.sha256
        ).hexdigest()
        assert click["thrad_sig"] == expected
        # An empty body is a click without campaign fields.
        assert http.post("/v1/api/test/clicks").status_code == 201
        converted = http.post(
            "/v1/api/conversion", json={**CONVERSION, "click_id": click["click_id"]}
        )
        assert converted.json() == {"status": "ok"}
    clicks = {
        row["click_id"]: row
        for row in export(module_server.database_url, "clicks", "--include-test")
    }
    stored = clicks[click["click_id"]]
    assert (stored["campaign_id"], stored["ad_id"], stored["bid_id"], stored["test"]) == (
        "c1",
        "a1",
        "b1",
        True,
    )
    assert click["click_id"] not in {
        row["click_id"] for row in export(module_server.database_url, "clicks")
    }


def test_test_clicks_refuse_live_keys_and_bad_bodies(
    module_server: ServerProcess, partner: str
) -> None:
    live_key, test_key = (
        create_key(module_server.database_url, partner),
        _test_key(module_server.database_url, partner),
    )
    with api_client(module_server, live_key["api_key"]) as live:
        refused = live.post("/v1/api/test/clicks", json={})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    with api_client(module_server, test_key["api_key"]) as http:
        bad = http.post(
            "/v1/api/test/clicks", json={"campaign_id": 7, "ad_id": "x" * 300, "landing": "u"}
        )
        assert bad.status_code == 422
        fields = {detail["field"] for detail in bad.json()["error"]["details"]}
        assert fields == {"campaign_id", "ad_id", "landing"}
        assert http.post("/v1/api/test/clicks", content=b"[1]").status_code == 400
    assert httpx.post(f"{module_server.base_url}/v1/api/test/clicks", json={}).status_code == 401


def test_a_live_key_cannot_convert_a_test_click(module_server: ServerProcess, partner: str) -> None:
    live_key, test_key = (
        create_key(module_server.database_url, partner),
        _test_key(module_server.database_url, partner),
    )
    with api_client(module_server, test_key["api_key"]) as http:
        click_id = http.post("/v1/api/test/clicks", json={}).json()["click_id"]
    with api_client(module_server, live_key["api_key"]) as live:
        answer = live.post("/v1/api/conversion", json={**CONVERSION, "click_id": click_id})
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "click_not_found"
        batch = live.post(
            "/v1/api/conversion/batch", json={"conversions": [{**CONVERSION, "click_id": click_id}]}
        )
        assert batch.json()["results"][0]["error"]["code"] == "click_not_found"


def test_clicks_create_stores_a_click_a_live_key_converts(
    module_server: ServerProcess, partner: str
) -> None:
    live_key = create_key(module_server.database_url, partner)
    minted = json.loads(
        cli(
            module_server.database_url,
            *("clicks", "create", "--campaign-id", "c9", "--bid-id", "b9", "--json"),
            env=SECRET_ENV,
        )
    )
    assert set(minted) == {"click_id", "thrad_exp", "thrad_sig"}
    expected = hmac.new(
        SECRET.encode(), f"{minted['click_id']}.{minted['thrad_exp']}".encode(), hashlib.sha256
    ).hexdigest()
    assert minted["thrad_sig"] == expected
    plain = cli(module_server.database_url, "clicks", "create").strip()
    assert uuid.UUID(plain).version == 4
    with api_client(module_server, live_key["api_key"]) as live:
        for click_id in (minted["click_id"], plain):
            answer = live.post("/v1/api/conversion", json={**CONVERSION, "click_id": click_id})
            assert answer.json() == {"status": "ok"}
    clicks = {row["click_id"]: row for row in export(module_server.database_url, "clicks")}
    assert clicks[minted["click_id"]]["campaign_id"] == "c9"
    assert clicks[minted["click_id"]]["test"] is False


def test_reports_leave_test_rows_out_unless_asked(
    module_server: ServerProcess, partner: str
) -> None:
    test_key, live_key = (
        _test_key(module_server.database_url, partner),
        create_key(module_server.database_url, partner),
    )
    tag = f"tag-{uuid.uuid4()}"
    with (
        api_client(module_server, test_key["api_key"]) as test_http,
        api_client(module_server, live_key["api_key"]) as live,
    ):
        click_id = test_http.post("/v1/api/test/clicks", json={"campaign_id": tag}).json()[
            "click_id"
        ]
        test_http.post("/v1/api/collect", json={"event_name": "a", "tag_id": tag})
        test_http.post("/v1/api/collect", json={"event_name": "b", "tag_id": tag})
        live.post("/v1/api/collect", json={"event_name": "a", "tag_id": tag})
        test_http.post(
            "/v1/api/conversion",
            json={**CONVERSION, "click_id": click_id, "conversion_time": _now()},
        )
        query = {"group_by": "tag_id", "filter": f"tag_id:{tag}"}
        for http in (live, test_http):
            default = http.get("/v1/api/reports/events", params=query).json()
            assert default["rows"] == [{"tag_id": tag, "events": 1}]
            assert default["include_test"] is False
            asked = http.get(
                "/v1/api/reports/events", params={**query, "include_test": "true"}
            ).json()
            assert asked["rows"] == [{"tag_id": tag, "events": 3}]
            assert asked["include_test"] is True
        funnel = {"group_by": "campaign_id", "filter": f"campaign_id:{tag}"}
        assert live.get("/v1/api/reports/funnel", params=funnel).json()["rows"] == []
        with_test = live.get(
            "/v1/api/reports/funnel", params={**funnel, "include_test": "true"}
        ).json()["rows"]
        assert [(row["clicks"], row["conversions"]) for row in with_test] == [(1, 1)]
        conversions = live.get("/v1/api/reports/conversions").json()["rows"]
        assert conversions == [] or all(row["conversions"] == 0 for row in conversions)
        wrong = live.get("/v1/api/reports/events", params={"include_test": "yes"})
        assert wrong.status_code == 422
        assert wrong.json()["error"]["details"][0]["field"] == "include_test"
    table = cli(
        module_server.database_url, "report", "events", "--filter", f"tag_id:{tag}", "--json"
    )
    assert json.loads(table)["rows"] == [{"events": 1}]
    table = cli(
        module_server.database_url,
        "report",
        "events",
        "--filter",
        f"tag_id:{tag}",
        "--include-test",
        "--json",
    )
    assert json.loads(table)["rows"] == [{"events": 3}]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _age_test_rows(database_url: str, days: int) -> None:
    """Move every test row's receipt `days` into the past (as if the rows had been kept)."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            for table in ("events", "conversions", "clicks"):
                conn.execute(
                    f"UPDATE {table} SET received_at = strftime('%Y-%m-%dT%H:%M:%fZ', "
                    f"'now', '-{days} days') || '000' WHERE test = 1"
                )
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("events", "conversions", "clicks"):
            conn.execute(
                f"UPDATE {table} SET received_at = now() - interval '{days} days' "  # type: ignore[arg-type]
                "WHERE test"
            )


def _counts(database_url: str) -> dict[str, int]:
    return {
        table: len(export(database_url, table, "--include-test"))
        for table in ("events", "conversions", "clicks")
    }


def test_old_test_rows_are_deleted_by_the_cli_and_live_rows_kept(
    server: ServerProcess, database_url: str
) -> None:
    """A server of its own: the purge (and the ageing here) reach every partner's test rows."""
    test_key, live_key = _test_key(database_url), create_key(database_url)
    with (
        api_client(server, test_key["api_key"]) as test_http,
        api_client(server, live_key["api_key"]) as live,
    ):
        click_id = test_http.post("/v1/api/test/clicks", json={}).json()["click_id"]
        for i in range(3):
            test_http.post("/v1/api/collect", json={"event_name": "t", "event_id": str(i)})
        test_http.post("/v1/api/conversion", json={**CONVERSION, "click_id": click_id})
        live.post("/v1/api/collect", json={"event_name": "live"})
    before = _counts(database_url)
    assert before == {"events": 4, "conversions": 1, "clicks": 1}
    # Younger than the retention: kept.
    kept = json.loads(cli(database_url, "test-rows", "purge", "--json"))
    assert kept == {"conversions": 0, "events": 0, "clicks": 0}
    _age_test_rows(database_url, 8)
    deleted = json.loads(cli(database_url, "test-rows", "purge", "--json"))
    assert deleted == {"conversions": 1, "events": 3, "clicks": 1}
    assert _counts(database_url) == {"events": 1, "conversions": 0, "clicks": 0}


def test_the_server_deletes_old_test_rows_when_it_starts(database_url: str, tmp_path: Path) -> None:
    """Servers of its own: it restarts one, and counts every partner's test rows."""
    with (
        running_server(database_url, tmp_path / "first.log") as first,
        api_client(first, _test_key(database_url)["api_key"]) as http,
    ):
        assert http.post("/v1/api/collect", json={"event_name": "t"}).status_code == 204
        assert http.post("/v1/api/test/clicks", json={}).status_code == 201
    _age_test_rows(database_url, 3)
    retention = {"THRAD_TEST_RETENTION_DAYS": "2"}
    with running_server(database_url, tmp_path / "second.log", env=retention):
        deadline = time.monotonic() + 20
        while _counts(database_url) != {"events": 0, "conversions": 0, "clicks": 0}:
            assert time.monotonic() < deadline, "old test rows were not deleted at start"
            time.sleep(0.2)
