"""A real headless Chromium for page tests: the system's /usr/bin/chromium (Debian's package),
driven through Playwright; no browser build is ever downloaded. Skipped without one, except
in CI (CI=true), where a missing browser fails the run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = os.environ.get("THRAD_TEST_CHROMIUM", "/usr/bin/chromium")

# The machine's network is closed: Chromium's own background traffic only adds noise.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_missing() -> str | None:
    if os.path.exists(CHROMIUM) or shutil.which(CHROMIUM):
        return None
    return f"no Chromium at {CHROMIUM} (apt-get install chromium)"


def require_chromium() -> None:
    reason = chromium_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def launch_chromium() -> Iterator[Browser]:
    """One headless browser; each test opens its own context (cookies, storage) in it."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
