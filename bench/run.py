"""Load benchmark behind `make bench`: a real server, wrk on the same machine, one table out.

For each scenario it starts `thrad-events serve --workers N` on a fresh store, drives it with wrk
(bench/events.lua makes every event unique, so every request is a new durable row), then checks
that every acknowledged request is a stored row, and reports req/s, p50/p99 and worker RSS.

    python bench/run.py [--duration 15] [--connections 64] [--workers 2] [--store sqlite]
                        [--only SCENARIO ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paired import LOADS, Paired, paired  # noqa: E402
from procs import server_cpu_s, worker_rss_mb  # noqa: E402
from sqlite_floor import rows_per_second  # noqa: E402
from stores import add_store_option, fresh_database  # noqa: E402
from tests.integration.server import ServerProcess, cli, create_key  # noqa: E402
from wrk import run_wrk  # noqa: E402

from thrad_events.store.sqlite_file import sqlite_path  # noqa: E402

KINDS = ("collect", "collect_refused10", "conversion", "collect_batch")
# The route a scenario's requests take, where it is not the scenario's name.
ROUTES = {"collect_refused10": "collect"}


def server_side(base_url: str, kind: str) -> dict[str, float]:
    """The server's own view from /metrics (all workers, warm-up included): rows per group
    commit, mean time a commit took (waiting for the write lock included), and the share of
    requests the endpoint answered within 25 ms, which leaves out time spent in the kernel, in
    wrk and waiting for the event loop."""
    write: dict[str, float] = {}  # thrad_write_* sums and counts
    within: dict[str, float] = {}  # this scenario's latency buckets, by upper bound
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("thrad_write_"):
                write[sample.name] = sample.value
            elif sample.name == "thrad_request_duration_seconds_bucket" and sample.labels.get(
                "route"
            ) == ROUTES.get(kind, kind):
                within[sample.labels["le"]] = sample.value
    commits = write.get("thrad_write_batch_rows_count") or 1.0
    return {
        "rows_per_commit": write.get("thrad_write_batch_rows_sum", 0.0) / commits,
        "commit_ms": write.get("thrad_write_commit_seconds_sum", 0.0) / commits * 1e3,
        "within_25ms": within.get("0.025", 0.0) / (within.get("+Inf") or 1.0) * 100,
    }


def mint_click(database_url: str, base_url: str) -> str:
    link = cli(
        database_url,
        "clicks",
        "link",
        "--landing-url",
        "https://shop.example.com/landing",
        "--base-url",
        base_url,
    ).strip()
    location = httpx.get(link, follow_redirects=False).headers["location"]
    return str(httpx.URL(location).params["thrad_click_id"])


def count_rows(database_url: str, table: str) -> int:
    """Rows in `table`, counted in the database (an export of minutes of load takes too long)."""
    assert table in ("events", "conversions", "clicks", "rejections")
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(sqlite_path(database_url))) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    with psycopg.connect(database_url) as connection:
        found = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(found[0]) if found else 0


class RssSampler(threading.Thread):
    """Samples the workers' RSS every few seconds while the load runs."""

    def __init__(self, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every_s = every_s
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            rss = worker_rss_mb(self.pid)
            if rss:
                self.samples.append(max(rss))


def scenario(
    kind: str, database_url: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    table = "conversions" if kind == "conversion" else "events"
    per_request = args.batch if kind == "collect_batch" else 1
    connections = min(args.connections, 8) if kind == "collect_batch" else args.connections
    server = ServerProcess(database_url, workdir / f"{kind}.log", workers=args.workers)
    try:
        key = create_key(database_url, "bench", kind, "--rate-limit", "100000000")["api_key"]
        click = mint_click(database_url, server.base_url) if kind == "conversion" else ""
        # Warm up (key cache, page cache), then measure.
        run_wrk(server.base_url, kind, key, click, 2, connections, args.batch)
        before = count_rows(database_url, table)
        rejections_before = count_rows(database_url, "rejections")
        sampler = RssSampler(server.process.pid, max(1.0, args.duration / 10))
        sampler.start()
        cpu_before = server_cpu_s(server.process.pid)
        result = run_wrk(server.base_url, kind, key, click, args.duration, connections, args.batch)
        cpu_s = server_cpu_s(server.process.pid) - cpu_before
        sampler.stopped.set()
        sampler.join()
        rss = worker_rss_mb(server.process.pid)
        server_view = server_side(server.base_url, kind)
    finally:
        server.stop()
    stored = count_rows(database_url, table) - before
    kept = count_rows(database_url, "rejections") - rejections_before
    acked = (result["requests"] - result["non_2xx"]) * per_request
    result.update(
        kind=kind,
        connections=connections,
        events_per_s=result["rps"] * per_request,
        acked=acked,
        stored=stored,
        durable=stored >= acked,
        rejections_kept=kept,
        cpu_us_per_request=cpu_s / max(result["requests"], 1) * 1e6,
        worker_rss_mb=max(rss) if rss else None,
        rss_samples=[round(x) for x in sampler.samples],
        **server_view,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    add_store_option(parser)
    parser.add_argument("--batch", type=int, default=500, help="events per batch request")
    parser.add_argument("--only", choices=KINDS, nargs="+", default=None, help="these scenarios")
    parser.add_argument(
        "--pairs",
        type=int,
        default=10,
        help="rounds of alternating short runs of collect, collect_refused10 and "
        "collect_checked10 on one server, for their ratios (bench/paired.py); 0: none",
    )
    parser.add_argument("--pair-seconds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="thrad-bench-"))
    # The floor first, back to back with the service: only the ratio of the two is stable
    # from one hour to the next on a shared machine.
    from bare_asgi import measure_floor

    floor = measure_floor(args.duration, args.connections, args.workers)
    results = []
    for kind in KINDS:
        if args.only and kind not in args.only:
            continue
        with fresh_database(args.store, workdir, kind) as database_url:
            results.append(scenario(kind, database_url, workdir, args))
        time.sleep(1)
    # The refused share's cost: the loads in turn on one server (bench/paired.py).
    pair: Paired | None = None
    ran = {r["kind"] for r in results}
    if args.pairs > 0 and {"collect", "collect_refused10"} <= ran:
        with fresh_database(args.store, workdir, "paired") as database_url:
            pair = paired(
                database_url, workdir / "paired.log", LOADS,
                rounds=args.pairs, seconds=args.pair_seconds,
                connections=args.connections, workers=args.workers,
            )  # fmt: skip
    # SQLite alone writing the batch scenario's rows, right after it: its yardstick.
    sqlite_floor = None
    if args.store == "sqlite" and any(r["kind"] == "collect_batch" for r in results):
        sqlite_floor, _ = rows_per_second(workdir, (), 100_000, args.batch)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; store {args.store}; {args.workers} workers; "
        f"wrk -t1 -d{args.duration}s on the same cores\n"
    )
    header = f"{'scenario':<18}{'conns':>6}{'req/s':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
    header += f"{'non-2xx':>8}{'acked':>9}{'stored':>9}{'durable':>8}{'RSS MB':>7}{'stolen':>7}"
    print(header)
    for r in results:
        print(
            f"{r['kind']:<18}{r['connections']:>6}{r['rps']:>9.0f}{r['events_per_s']:>10.0f}"
            f"{r['p50_us'] / 1000:>8.2f}{r['p99_us'] / 1000:>8.2f}{r['non_2xx']:>8}"
            f"{r['acked']:>9}{r['stored']:>9}{r['durable']!s:>8}{r['worker_rss_mb'] or 0:>7.0f}"
            f"{r['steal']:>7.0%}"
        )
    print(
        f"\nfloor (bare ASGI app decoding the same body, same server and wrk): "
        f"{floor['rps']:,.0f} req/s, p50 {floor['p50_us'] / 1000:.2f} ms, "
        f"p99 {floor['p99_us'] / 1000:.2f} ms, {floor['cpu_us_per_request']:,.0f} µs of server "
        f"CPU a request, {floor['steal']:.0%} of the CPU stolen"
    )
    for r in results:
        if r["kind"] != "collect_batch":
            print(
                f"  {r['kind']:<18}{r['rps'] / floor['rps']:6.1%} of the floor's req/s, "
                f"{r['rps_unstolen'] / floor['rps_unstolen']:6.1%} per unstolen CPU"
            )
    found = {r["kind"]: r for r in results}
    plain, refused = found.get("collect"), found.get("collect_refused10")
    if plain and "conversion" in found:
        print(
            f"  {'conversion':<18}{found['conversion']['rps'] / plain['rps']:6.1%} "
            "of collect's req/s"
        )
    if sqlite_floor and "collect_batch" in found:
        print(
            f"  {'collect_batch':<18}{found['collect_batch']['events_per_s'] / sqlite_floor:6.1%} "
            f"of SQLite's own floor for the same rows ({sqlite_floor:,.0f} rows/s: one thread, "
            f"commits of {args.batch}, bench/sqlite_floor.py)"
        )
    if plain and refused:
        accepted_rps = refused["rps"] * (1 - refused["non_2xx"] / refused["requests"])
        print(
            "\ncollect with 10% refused (422, kept as rejections): "
            f"{refused['rps'] / plain['rps']:.1%} of plain collect's req/s "
            f"({refused['rps_unstolen'] / plain['rps_unstolen']:.1%} per unstolen CPU); "
            f"accepted requests {accepted_rps:,.0f}/s = "
            f"{accepted_rps / plain['rps']:.1%} of plain collect's; p99 "
            f"{refused['p99_us'] / plain['p99_us']:.2f}x; {refused['rejections_kept']} rejections "
            f"kept of {refused['non_2xx']} refused (the two runs above, minutes apart: the "
            "rounds below, where run, are the measure)"
        )
    if pair is not None:
        print(f"  {pair.line('collect_refused10')}")
        print(f"  {pair.line('collect_checked10')}")
        print(f"  {pair.line('collect_refused10', 'collect_checked10')}")
    print("\nserver side (its /metrics, warm-up included):")
    for r in results:
        print(
            f"  {r['kind']:<18}{r['rows_per_commit']:6.1f} rows a commit, "
            f"{r['commit_ms']:5.2f} ms a commit (waits included), "
            f"{r['within_25ms']:5.1f}% answered by the endpoint within 25 ms, "
            f"{r['cpu_us_per_request']:,.0f} µs of server CPU a request"
        )
    print("\nworker RSS samples (MB, max of the workers):")
    for r in results:
        print(f"  {r['kind']:<18}{r['rss_samples']}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
