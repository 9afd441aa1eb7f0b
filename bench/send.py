"""`thrad-events send` at volume: 100,000 events from a file into a local server.

Starts `thrad-events serve` on a fresh SQLite file, writes a file of N distinct events (one JSON
object a line, as a partner would export them), runs `thrad-events send collect --file` against
the server, and prints the wall time, the rate, and whether every line was answered and every
event stored once.

    python bench/send.py [--events 100000] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.server import (  # noqa: E402
    PYTHON,
    ServerProcess,
    clean_env,
    create_key,
    export,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="thrad-send-"))
    events = workdir / "events.jsonl"
    with events.open("w") as out:
        for n in range(args.events):
            event = {
                "event_name": "page_view",
                "event_id": f"send-{n}",
                "tag_id": "adv_001",
                "timestamp": 1771879200 + n,
                "page_url": f"https://shop.example.com/p/{n % 977}",
                "params": {"step": "shipping", "value": 58.0},
            }
            out.write(json.dumps(event) + "\n")
    database_url = f"sqlite:///{workdir / 'thrad.db'}"
    server = ServerProcess(database_url, workdir / "server.log", workers=args.workers)
    try:
        key = create_key(database_url, "bench", "send", "--rate-limit", "100000000")
        started = time.monotonic()
        done = subprocess.run(
            [PYTHON, "-m", "thrad_events", "send", "collect", "--file", str(events)],
            env=clean_env(
                database_url,
                {"THRAD_API_KEY": key["api_key"], "THRAD_BASE_URL": server.base_url},
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        answered = done.stdout.count("\n")
        stored = len(export(database_url, "events"))
    finally:
        server.stop()
    print(
        f"send collect --file: {args.events:,} events in {seconds:.1f} s "
        f"({args.events / seconds:,.0f}/s) against {args.workers} worker(s); "
        f"lines answered {answered:,}, events stored {stored:,}, exit {done.returncode}; "
        f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}"
    )


if __name__ == "__main__":
    main()
