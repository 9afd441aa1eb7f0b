"""The machine's ceiling for the HTTP stack: a bare ASGI app that reads and decodes the event.

It serves POST /v1/api/collect with nothing but the body read, the decode into the service's own
CollectRequest Struct and a 204, on
uvicorn with uvloop and httptools and the same worker count, and drives it with the same wrk
script as bench/run.py. Numbers move 2-3x between machines and hours, so compare `make bench`
against this figure from the same hour, not against figures from another machine.

    python bench/bare_asgi.py [--duration 10] [--connections 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from thrad_events.schemas import CollectRequest  # noqa: E402

_decoder = msgspec.json.Decoder(CollectRequest, strict=True)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    _decoder.decode(body)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def measure_floor(duration: int, connections: int, workers: int) -> dict[str, Any]:
    """Serve `app` on uvicorn like the service and drive it with the same wrk script."""
    from procs import server_cpu_s
    from tests.integration.server import free_port
    from wrk import run_wrk

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_asgi:app",
            "--app-dir",
            str(ROOT / "bench"),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "bench")},
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        cpu_before = server_cpu_s(server.pid)
        result = run_wrk(
            f"http://127.0.0.1:{port}", "collect", "unused", "", duration, connections, 1
        )
        result["cpu_us_per_request"] = (
            (server_cpu_s(server.pid) - cpu_before) / max(result["requests"], 1) * 1e6
        )
    finally:
        server.terminate()
        server.wait(10)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = measure_floor(args.duration, args.connections, args.workers)
    print(
        f"bare ASGI + msgspec, {args.workers} workers, {args.connections} connections: "
        f"{result['rps']:,.0f} req/s, p50 {result['p50_us'] / 1000:.2f} ms, "
        f"p99 {result['p99_us'] / 1000:.2f} ms, non-2xx {result['non_2xx']}, "
        f"{result['cpu_us_per_request']:.0f} µs of server CPU a request"
    )


if __name__ == "__main__":
    main()
