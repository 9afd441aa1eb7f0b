"""A tiny local web server for the browser Tag's page tests: the advertiser's landing pages.

It serves whatever HTML a test puts under a path, on its own port, so that the page's origin
differs from the Thrad server's (http://localhost:<port> and http://127.0.0.1:<port> are two
origins of the same server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LandingSite:
    def __init__(self, server: ThreadingHTTPServer, pages: dict[str, str]) -> None:
        self.port = server.server_address[1]
        self.pages = pages

    def origin(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}"


@contextmanager
def landing_site() -> Iterator[LandingSite]:
    pages: dict[str, str] = {}

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            html = pages.get(self.path.split("?", 1)[0])
            body = (html or "not found").encode()
            self.send_response(200 if html is not None else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LandingSite(server, pages)
    finally:
        server.shutdown()
        server.server_close()
