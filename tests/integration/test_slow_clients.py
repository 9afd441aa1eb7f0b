"""Slow clients cannot hold a worker: a trickled body is cut off with 408."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.integration.server import ServerProcess, create_key


def test_body_trickled_slower_than_the_timeout_gets_408(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 's.db'}"
    server = ServerProcess(database_url, tmp_path / "s.log", env={"THRAD_BODY_TIMEOUT_S": "1"})
    try:
        key = create_key(database_url)["api_key"]
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/api/collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {key}\r\n".encode()
                + b"Content-Length: 100\r\n\r\n"
                + b'{"event_name":'
            )
            started = time.monotonic()
            answer = b""
            while b"request_timeout" not in answer:
                chunk = sock.recv(4096)  # headers and body may come in separate packets
                if not chunk:
                    break
                answer += chunk
            assert b"408" in answer.split(b"\r\n", 1)[0]
            assert b"request_timeout" in answer
            assert time.monotonic() - started < 5
    finally:
        server.stop()
