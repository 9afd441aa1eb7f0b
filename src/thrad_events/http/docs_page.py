"""GET /docs: the OpenAPI document rendered by Swagger UI, every asset served by this server.

The assets come from the pinned swagger-ui-bundle-v2 package and are read once at start-up.
Each has a fixed path in the route table, under the Swagger UI version (so a new version is a
new URL and browsers may keep each one for a year): no part of a request's path is ever used to
open a file. The page's Content-Security-Policy lets it load and call only this server.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from starlette.types import Receive, Scope
from swagger_ui_bundle import swagger_ui_path

from thrad_events.errors import Outcome
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer

SWAGGER_UI_VERSION = Path(str(swagger_ui_path)).name.removeprefix("swagger-ui-")
ASSET_PREFIX = f"/docs/{SWAGGER_UI_VERSION}/"
_TYPES = {
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".png": b"image/png",
}
# The files of the bundle that the page uses, and our own initialiser.
_BUNDLED = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    b"form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", _CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-cache"),
]


def _asset(name: str, body: bytes) -> Handle:
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = [
        (b"content-type", _TYPES[Path(name).suffix]),
        (b"cache-control", b"public, max-age=31536000, immutable"),
        (b"etag", etag.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    full = (Outcome.SERVED, Answer(200, body, headers))
    unchanged = (Outcome.SERVED, Answer(304, b"", headers[1:3]))

    async def serve(
        scope: Scope, receive: Receive, request_headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        if etag in request_headers.get("if-none-match", ""):
            return unchanged
        return full

    return serve


def asset_handles() -> dict[str, Handle]:
    """The route table's entries for the page's assets, by path."""
    bodies = {name: (Path(str(swagger_ui_path)) / name).read_bytes() for name in _BUNDLED}
    bodies["init.js"] = (resources.files("thrad_events.http") / "docs_init.js").read_bytes()
    return {ASSET_PREFIX + name: _asset(name, body) for name, body in bodies.items()}


_PAGE = (
    Outcome.SERVED,
    Answer(
        200,
        (resources.files("thrad_events.http") / "docs.html")
        .read_text()
        .replace("{version}", SWAGGER_UI_VERSION)
        .encode(),
        _PAGE_HEADERS,
    ),
)


async def docs(scope: Scope, receive: Receive, headers: dict[str, str]) -> tuple[Outcome, Answer]:
    return _PAGE
