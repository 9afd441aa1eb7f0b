"""Driving a server with wrk and bench/events.lua: every request a new event, one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_wrk(
    base_url: str, kind: str, key: str, click: str, duration: int, connections: int, batch: int
) -> dict[str, Any]:
    """events.lua's summary (requests, duration_us, non_2xx, latencies in us) and `rps`."""
    env = dict(
        os.environ, BENCH_KIND=kind, BENCH_KEY=key, BENCH_CLICK=click, BENCH_BATCH=str(batch)
    )
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "events.lua"),
            base_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
