"""The API docs as a partner reads them: /openapi.json's examples work on the real server, and
/docs renders it with Swagger UI served by the server itself, nothing fetched from elsewhere. One
server per module (and store); the examples are sent with a key of a partner of the test's own."""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Request

from tests.integration.server import ServerProcess, real_click
from thrad_events.http.docs_page import ASSET_PREFIX
from thrad_events.http.openapi.shared import CLICK_ID_EXAMPLE


def test_every_request_body_example_is_accepted(
    module_server: ServerProcess, partner_client: httpx.Client
) -> None:
    """Each documented example, sent as documented (conversions on a real click), is stored."""
    document = partner_client.get("/openapi.json").json()
    click_id = real_click(module_server)
    sent = 0
    for path, item in document["paths"].items():
        operation = item.get("post")
        # The API-key ingest bodies; the admin API, test clicks and the browser Tag have theirs
        # sent by their own tests.
        if (
            operation is None
            or "requestBody" not in operation
            or path.startswith(("/v1/admin/", "/v1/api/test/", "/v1/tag/"))
        ):
            continue
        example = copy.deepcopy(operation["requestBody"]["content"]["application/json"]["example"])
        body = json.dumps(example).replace(CLICK_ID_EXAMPLE, click_id)
        # Aliases share the example: vary the ids so each is stored, not a duplicate.
        body = body.replace("order-12", f"order-{sent}-12").replace('"pv-', f'"pv-{sent}-')
        answer = partner_client.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code in (200, 204), (path, answer.text)
        if answer.status_code == 200:
            found: Any = answer.json()
            if "totals" in found:
                assert found["totals"]["error"] == 0, (path, found)
            else:
                assert found == {"status": "ok"}, path
        sent += 1
    assert sent == 8


@pytest.mark.sqlite_only("the page and its assets do not depend on the store")
def test_docs_assets_are_cached_and_revalidated(module_server: ServerProcess) -> None:
    url = f"{module_server.base_url}{ASSET_PREFIX}swagger-ui-bundle.js"
    first = httpx.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    assert "immutable" in first.headers["cache-control"]
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.sqlite_only("the page and its assets do not depend on the store")
def test_docs_assets_cannot_reach_other_files(module_server: ServerProcess) -> None:
    """Assets are fixed routes: no request path opens a file."""
    for path in (
        f"{ASSET_PREFIX}../../../../etc/passwd",
        f"{ASSET_PREFIX}%2e%2e/%2e%2e/pyproject.toml",
        f"{ASSET_PREFIX}..%2f..%2fdocs.html",
        f"{ASSET_PREFIX}index.j2",
        "/docs/../openapi.json/../../etc/passwd",
    ):
        with socket.create_connection(("127.0.0.1", module_server.port)) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:200])
        assert b"root:" not in answer


@pytest.mark.sqlite_only("the page and its assets do not depend on the store")
def test_docs_page_renders_the_api_offline(
    chromium: Browser, module_server: ServerProcess, tmp_path: Path
) -> None:
    """The page loads with no request leaving the server, and shows the operations with
    their parameters, descriptions and try-it."""
    context = chromium.new_context(viewport={"width": 1280, "height": 2000})
    requests: list[str] = []

    def seen(request: Request) -> None:
        requests.append(request.url)

    context.on("request", seen)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        answer = page.goto(f"{module_server.base_url}/docs")
        assert answer is not None
        assert answer.status == 200
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        for path in ("/v1/api/collect", "/v1/api/conversion", "/v1/api/export/events"):
            assert any(path == text.strip().replace("\u200b", "") for text in paths), paths
        page.locator("#operations-default-post_v1_api_conversion").click()
        page.wait_for_selector("text=Idempotency-Key")
        assert page.locator("text=validate_only").count() >= 1
        assert page.locator("button.try-out__btn").count() >= 1
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    finally:
        context.close()
    assert not errors, errors
    outside = [url for url in requests if urlsplit(url).hostname != "127.0.0.1"]
    assert not outside, outside
    assert any(url.endswith("/openapi.json") for url in requests)
