"""The event debugger page, GET /debugger, in a real headless Chromium: a partner enters a key
and sees its requests arrive live, as text, with outcome colours, filters, pause and details.
One server per module (and store); each test's key is of a partner of its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.integration.server import ServerProcess

HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned'\">"


def send(server: ServerProcess, key: dict[str, Any], body: Any) -> int:
    answer = httpx.post(
        f"{server.base_url}/v1/api/collect",
        json=body,
        headers={"Authorization": f"Bearer {key['api_key']}"},
        timeout=10,
    )
    return answer.status_code


def connected(page: Page, server: ServerProcess, key: str) -> None:
    page.goto(f"{server.base_url}/debugger")
    page.fill("#key", key)
    page.click("#connect")
    expect(page.locator("#status")).to_have_text(re.compile("^Live"), timeout=15_000)


def test_requests_show_live_with_outcome_errors_and_stored_row(
    chromium: Browser, module_server: ServerProcess, partner_key: dict[str, Any], tmp_path: Path
) -> None:
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    try:
        connected(page, module_server, partner_key["api_key"])
        assert partner_key["api_key"] not in page.url
        rows = page.locator("#events tbody tr")

        assert (
            send(module_server, partner_key, {"event_name": HOSTILE_NAME, "event_id": "x-1"}) == 204
        )
        assert (
            send(module_server, partner_key, {"event_name": HOSTILE_NAME, "event_id": "x-1"}) == 204
        )
        assert (
            send(module_server, partner_key, {"event_name": "signup_started", "tag_id": 7}) == 422
        )
        expect(rows).to_have_count(3, timeout=15_000)

        # Newest first; the outcome is a coloured badge.
        expect(rows.nth(0).locator(".outcome")).to_have_text("rejected")
        expect(rows.nth(0).locator(".outcome")).to_have_class(re.compile("outcome-rejected"))
        expect(rows.nth(1).locator(".outcome")).to_have_text("duplicate")
        expect(rows.nth(2).locator(".outcome")).to_have_text("ok")
        # A partner's data is text on the page, never markup.
        expect(rows.nth(2).locator("td.name")).to_have_text(HOSTILE_NAME)
        assert page.locator("#events img").count() == 0
        assert page.title() != "pwned"

        rows.nth(0).click()
        detail = page.locator("#detail")
        expect(detail.locator("ul.errors li")).to_contain_text("tag_id")
        expect(detail.locator("ul.errors li")).to_contain_text("must be a string")
        page.screenshot(path=str(tmp_path / "debugger-rejected.png"), full_page=True)

        rows.nth(2).click()
        expect(detail).to_contain_text("Stored row")
        expect(detail.locator(".kv")).to_contain_text("ua_device_type")
        expect(detail.locator(".kv")).to_contain_text(partner_key["partner_id"])
        assert detail.locator("img").count() == 0

        page.select_option("#filter-outcome", "rejected")
        expect(rows).to_have_count(1)
        page.select_option("#filter-outcome", "")
        page.fill("#filter-name", "signup")
        expect(rows).to_have_count(1)
        page.fill("#filter-name", "")
        expect(rows).to_have_count(3)

        page.click("#pause")
        assert send(module_server, partner_key, {"event_name": "while_paused"}) == 204
        expect(page.locator("#buffered")).to_have_text("1", timeout=15_000)
        expect(rows).to_have_count(3)
        page.click("#pause")
        expect(rows).to_have_count(4)
        expect(rows.nth(0).locator("td.name")).to_have_text("while_paused")
        page.screenshot(path=str(tmp_path / "debugger.png"), full_page=True)
    finally:
        page.close()


def test_a_wrong_key_is_told_why(chromium: Browser, module_server: ServerProcess) -> None:
    page = chromium.new_page()
    try:
        page.goto(f"{module_server.base_url}/debugger")
        page.fill("#key", "thr_not-a-real-key")
        page.click("#connect")
        expect(page.locator("#message")).to_contain_text("unauthorized", timeout=15_000)
        expect(page.locator("#status")).to_have_text("Refused")
    finally:
        page.close()


def test_the_page_needs_nothing_from_elsewhere(module_server: ServerProcess) -> None:
    """Served whole by the server (works offline), and its policy runs no script but its own."""
    answer = httpx.get(f"{module_server.base_url}/debugger", timeout=10)
    assert answer.status_code == 200
    assert 'src="http' not in answer.text
    assert 'href="http' not in answer.text
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
