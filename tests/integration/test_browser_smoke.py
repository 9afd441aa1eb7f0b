"""The browser the page tests use works here: it opens a page of the real server."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.integration.server import ServerProcess


def test_chromium_renders_a_page_of_the_server(
    chromium: Browser, shared_server: ServerProcess
) -> None:
    page = chromium.new_page()
    try:
        answer = page.goto(f"{shared_server.base_url}/healthz")
        assert answer is not None
        assert answer.status == 200
        assert "ok" in page.content()
    finally:
        page.close()
