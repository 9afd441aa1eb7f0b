"""Driving a server with wrk and bench/events.lua: every request a new event, one JSON summary.

On a virtual machine whose host runs other guests, the hypervisor takes a share of the CPU time
(steal), and that share moves from one run to the next by more than the differences measured
(BENCHMARKS.md, "Machine and method"). Each run therefore also reports that share and its rate
per unstolen CPU, `rps / (1 - steal)`: an estimate of the rate with the whole CPU, on which two
runs' ratio is less at the mercy of the host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from procs import machine_cpu_ticks, stolen_share

ROOT = Path(__file__).resolve().parent.parent


def run_wrk(
    base_url: str, kind: str, key: str, click: str, duration: int, connections: int, batch: int
) -> dict[str, Any]:
    """events.lua's summary (requests, duration_us, non_2xx, latencies in us), `rps`, the
    stolen share of the machine's CPU time while wrk ran (`steal`) and `rps_unstolen`."""
    env = dict(
        os.environ, BENCH_KIND=kind, BENCH_KEY=key, BENCH_CLICK=click, BENCH_BATCH=str(batch)
    )
    ticks = machine_cpu_ticks()
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
    steal = stolen_share(ticks, machine_cpu_ticks())
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["steal"] = steal
            result["rps_unstolen"] = result["rps"] / max(1.0 - steal, 0.05)
            return result
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
