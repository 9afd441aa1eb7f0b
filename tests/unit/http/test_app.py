"""The composed app on a real SQLite store: every route through the one path, counted by route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.http.asgi import Reply, call, lifespan
from thrad_events.app import App, build_app
from thrad_events.auth import admin
from thrad_events.config import Settings
from thrad_events.ingest.clicklinks import ClickLink, sign_link
from thrad_events.store import open_store

SECRET = "unit-click-secret-0123456789"
ADMIN = "unit-admin-token-0123456789"
EVENT = json.dumps({"event_name": "page_view", "event_id": "e-1"}).encode()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[App, str]:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    url = f"sqlite:///{tmp_path / 'thrad.db'}"
    store = open_store(url)
    store.migrate()
    key = admin.create_key(
        store, admin.CLI_ACTOR, partner="acme", label="unit", create_partner=True
    ).api_key
    store.close_sync()
    app = build_app(
        Settings(database_url=url, click_secret=SECRET, admin_token=ADMIN, max_body_bytes=1000)
    )
    return app, key


def run(app: App, steps: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with lifespan(app):
            return await steps()

    return asyncio.run(main())


def count(app: App, name: str, **labels: str) -> float:
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]


def test_collect_is_stored_then_a_repeat_is_a_duplicate_both_204(served: tuple[App, str]) -> None:
    app, key = served

    async def steps() -> list[Reply | None]:
        return [await call(app, "POST", "/v1/api/collect", headers=bearer(key), body=EVENT)
                for _ in "ab"]  # fmt: skip

    replies = run(app, steps)
    assert [reply.status for reply in replies] == [204, 204]
    assert count(app, "thrad_outcomes_total", route="collect", outcome="stored") == 1
    assert count(app, "thrad_outcomes_total", route="collect", outcome="duplicate") == 1


def test_a_declared_oversize_body_is_refused_before_the_key_is_looked_at(
    served: tuple[App, str],
) -> None:
    app, _ = served
    headers = [("Authorization", "Bearer thr_nonsense"), ("Content-Length", "1001")]
    reply = run(app, lambda: call(app, "POST", "/api/collect", headers=headers, body=b"{}"))
    assert reply.status == 413
    assert reply.json()["error"]["code"] == "payload_too_large"


def test_a_click_and_its_head_preview_are_both_counted(served: tuple[App, str]) -> None:
    app, _ = served
    query = sign_link(ClickLink("https://shop.example.com/p?ref=a b"), SECRET, "http://x")
    query = query.split("?", 1)[1]

    async def steps() -> tuple[Reply | None, Reply | None]:
        follow = await call(app, "GET", "/v1/click", query=query.encode())
        probe = await call(app, "HEAD", "/v1/click", query=query.encode())
        return follow, probe

    follow, probe = run(app, steps)
    assert follow.status == probe.status == 302
    assert "thrad_click_id=" in follow.headers["location"]
    assert probe.headers["location"] == "https://shop.example.com/p?ref=a%20b"
    assert follow.headers["cache-control"] == "no-store"
    assert count(app, "thrad_outcomes_total", route="click", outcome="stored") == 1
    assert count(app, "thrad_outcomes_total", route="click", outcome="previewed") == 1


def test_a_tampered_click_link_is_a_counted_400(served: tuple[App, str]) -> None:
    app, _ = served
    reply = run(app, lambda: call(app, "GET", "/v1/click", query=b"url=https%3A%2F%2Fx&sig=00"))
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "bad_click_link"
    assert count(app, "thrad_outcomes_total", route="click", outcome="bad_click_link") == 1


def test_a_report_and_its_refusal_are_counted_by_outcome(served: tuple[App, str]) -> None:
    app, key = served

    async def steps() -> tuple[Reply | None, Reply | None]:
        path = "/v1/api/reports/events"
        mine = await call(app, "GET", path, headers=bearer(key), query=b"group_by=day")
        other = await call(app, "GET", path, headers=bearer(key), query=b"partner_id=ptn_other")
        return mine, other

    mine, other = run(app, steps)
    assert mine.status == 200
    assert mine.headers["cache-control"] == "private, no-store"
    assert mine.json()["rows"] == []
    assert other.status == 403
    route = "reports_events"
    assert count(app, "thrad_outcomes_total", route=route, outcome="served") == 1
    assert count(app, "thrad_outcomes_total", route=route, outcome="forbidden") == 1


def test_probes_and_scrapes_are_answered_but_not_counted(served: tuple[App, str]) -> None:
    app, _ = served

    async def steps() -> list[Reply | None]:
        return [await call(app, "GET", path) for path in ("/healthz", "/readyz", "/metrics")]

    healthz, readyz, metrics = run(app, steps)
    assert healthz.json() == {"status": "ok"}
    assert readyz.json() == {"status": "ready"}
    text = metrics.body.decode()
    assert "thrad_rate_limit_storage_failures_total 0.0" in text
    assert "# TYPE thrad_enrichment_failures_total counter" in text
    assert 'route="healthz"' not in text


def test_the_ingest_paths_take_post_only(served: tuple[App, str]) -> None:
    app, _ = served
    reply = run(app, lambda: call(app, "GET", "/v1/api/collect/batch"))
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
