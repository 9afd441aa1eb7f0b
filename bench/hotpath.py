"""CPU cost of one ingest request inside the app, without sockets, HTTP parsing or a load tool.

Builds the real app (real SQLite store with its group-commit writer, enrichment, rate limits,
metrics) and calls the collect or conversion endpoint as uvicorn would, with many requests in
flight, then prints the process CPU time per request. It isolates the Python work that a
wrk run mixes with the kernel and the load generator, and it is steadier from run to run, so
it is the number to watch while optimising the hot path. --profile adds a cProfile listing.

    python bench/hotpath.py [--kind collect|conversion|collect_batch] [--requests 20000]
                            [--repeat 3] [--profile] [--multiprocess-metrics]
                            [--alternate KIND ...]

--alternate measures kinds against --kind in alternating rounds on one app, as bench/paired.py
does through HTTP: collect_refused10 (every tenth body refused) and its control
collect_checked10 (every tenth a valid event sent with validate_only) against collect.

--multiprocess-metrics keeps the metrics as `serve --workers N` does (every value in a file
shared by the workers), which costs more per write than one process's values.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import cProfile
import itertools
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
# prometheus-client picks its kind of value when it is imported, so this comes first.
MULTIPROCESS_METRICS = "--multiprocess-metrics" in sys.argv
if MULTIPROCESS_METRICS:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hotpath-metrics-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

from procs import cpu_s  # noqa: E402
from stores import add_store_option, fresh_database  # noqa: E402

from thrad_events.app import build_app  # noqa: E402
from thrad_events.auth import admin  # noqa: E402
from thrad_events.config import WRITE_TIMEOUT_S, Settings  # noqa: E402
from thrad_events.ingest.clicklinks import ClickLink, sign_link  # noqa: E402
from thrad_events.store import open_store  # noqa: E402

EVENT_NUMBERS = itertools.count()  # every request a new event_id / order_id, across rounds
SECRET = "bench-click-secret-0123456789"
UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"
)


BATCH_ITEMS = 500
# Each kind of load and the path its requests take.
PATHS = {
    "collect": "/v1/api/collect",
    "collect_refused": "/v1/api/collect",
    "collect_refused10": "/v1/api/collect",
    "collect_checked10": "/v1/api/collect",
    "conversion": "/v1/api/conversion",
    "collect_batch": "/v1/api/collect/batch",
}
KINDS = tuple(PATHS)


def body(kind: str, n: int, click_id: str) -> bytes:
    if kind == "collect_batch":
        items = b",".join(
            body("collect", n * BATCH_ITEMS + i, click_id) for i in range(BATCH_ITEMS)
        )
        return b'{"events":[' + items + b"]}"
    if kind == "collect_refused" or (kind == "collect_refused10" and n % 10 == 0):
        # The 422 of bench/events.lua's collect_refused10: every request refused and kept.
        return f'{{"tag_id":"adv_001","event_name":5,"event_id":"e-{n}"}}'.encode()
    if kind == "conversion":
        return (
            f'{{"click_id":"{click_id}","conversion_time":"2026-02-19T18:00:00Z",'
            f'"conversion_value":49.99,"currency":"USD","order_id":"order-{n}",'
            f'"event_type":"purchase_completed","user_agent":"{UA}","customer_tier":"gold"}}'
        ).encode()
    return (
        f'{{"tag_id":"adv_001","event_name":"page_view","event_id":"e-{n}",'
        f'"timestamp":1771879200,"page_url":"https://shop.example.com/checkout?utm_source=chat",'
        f'"user_agent":"{UA}","session_id":"sess_abc","params":{{"step":"shipping","value":58.0}}}}'
    ).encode()


def query(kind: str, n: int) -> bytes:
    """bench/events.lua's control: every tenth a valid event checked, not written."""
    return b"validate_only=true" if kind == "collect_checked10" and n % 10 == 0 else b""


async def call(
    app: Any,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    query: bytes = b"",
) -> list[dict[str, Any]]:
    """One request through the ASGI app, as uvicorn would make it; the messages sent back."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "root_path": "",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "client": ("203.0.113.7", 40000),
        "headers": [(b"host", b"events.example"), *headers],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def drive(app: Any, kind: str, key: str, click_id: str, count: int, inflight: int) -> int:
    path = PATHS[kind]
    statuses: dict[int, int] = {}

    async def one() -> None:
        n = next(EVENT_NUMBERS)
        payload = body(kind, n, click_id)
        headers = [
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"user-agent", UA.encode()),
        ]
        status = (await call(app, "POST", path, headers, payload, query(kind, n)))[0]["status"]
        statuses[status] = statuses.get(status, 0) + 1

    async def lane(requests: int) -> None:
        for _ in range(requests):
            await one()

    per_lane, extra = divmod(count, inflight)
    await asyncio.gather(*(lane(per_lane + (i < extra)) for i in range(inflight)))
    expected = 422 if kind in ("collect_refused", "collect_refused10") else None
    ok = sum(n for status, n in statuses.items() if status < 300 or status == expected)
    if ok != count:
        sys.exit(f"not every request succeeded: {statuses}")
    return ok


@dataclass(frozen=True)
class Run:
    """One measured drive: its requests, the process's CPU and wall seconds, and each
    thread's CPU seconds by name."""

    done: int
    cpu: float
    wall: float
    threads: dict[str, float]


async def measured(
    app: Any,
    kind: str,
    key: str,
    click_id: str,
    args: argparse.Namespace,
    profile: cProfile.Profile | None = None,
) -> Run:
    threads = thread_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    done = await drive(app, kind, key, click_id, args.requests, args.inflight)
    if profile is not None:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    spent = {name: seconds - threads.get(name, 0.0) for name, seconds in thread_cpu().items()}
    return Run(done, cpu, wall, spent)


async def warm(app: Any, kind: str, key: str, click_id: str, inflight: int) -> None:
    """Caches warmed before anything is measured."""
    await drive(app, kind, key, click_id, 20 if kind == "collect_batch" else 2000, inflight)


def rows_per_commit(app: Any) -> float:
    samples = {
        sample.name: sample.value
        for metric in app.metrics.registry.collect()
        if metric.name == "thrad_write_batch_rows"
        for sample in metric.samples
    }
    return samples["thrad_write_batch_rows_sum"] / max(1.0, samples["thrad_write_batch_rows_count"])


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by thread name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        name = names.get(int(task.name), f"thread {task.name}")
        out[name] = out.get(name, 0.0) + cpu_s(task / "stat")
    return out


async def main(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(fresh_database(args.store, workdir, "bench"))
        store = open_store(url)
        store.migrate()
        key, other_key = (
            admin.create_key(
                store, admin.CLI_ACTOR, partner=name, label="bench", create_partner=True
            ).api_key
            for name in ("bench", "other")
        )
        store.close_sync()
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if MULTIPROCESS_METRICS else None
        if metrics_dir is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        app = build_app(
            Settings(
                database_url=url,
                rate_limit_per_s=10**9,
                click_secret=SECRET,
                metrics_dir=metrics_dir,
                write_timeout_s=args.write_timeout,
            )
        )
        starlette = app.fallback
        async with starlette.router.lifespan_context(starlette):
            click_id = await mint_click(app)
            watcher = None
            if args.watch != "none":
                watcher = await watch(app, key if args.watch == "same" else other_key)
            if args.alternate:
                await alternate(app, args, key, click_id)
                return
            await warm(app, args.kind, key, click_id, args.inflight)
            profile = cProfile.Profile() if args.profile else None
            runs = [
                await measured(app, args.kind, key, click_id, args, profile)
                for _ in range(args.repeat)
            ]
            if watcher is not None:
                print(f"  debugger stream received {watcher[1][0]:,} bytes")
    best = min(runs, key=lambda run: run.cpu)
    done, cpu, wall, threads = best.done, best.cpu, best.wall, best.threads
    per = BATCH_ITEMS if args.kind == "collect_batch" else 1
    if per > 1:
        print(f"{args.kind} of {per} events: {cpu / done / per * 1e6:.1f} us CPU per event")
    print(
        f"{args.kind}: {done} requests, {args.inflight} in flight: "
        f"{cpu / done * 1e6:.1f} us CPU per request (all threads), {done / wall:,.0f} req/s "
        f"in one process without HTTP (best of {args.repeat})"
    )
    print(f"  rows per commit: {rows_per_commit(app):.1f}")
    for name, seconds in sorted(threads.items(), key=lambda item: -item[1]):
        if seconds > 0:
            print(f"  {name:<24} {seconds / done * 1e6:7.1f} us per request")
    if profile is not None:
        stats = pstats.Stats(profile).sort_stats(args.sort)
        stats.print_stats(os.environ.get("PROFILE_FILTER", ""), 35)


async def alternate(app: Any, args: argparse.Namespace, key: str, click_id: str) -> None:
    """--kind and the --alternate kinds take turns on this one app, `repeat` rounds in the order
    A B C, C B A, ... (bench/paired.py's method without HTTP): each kind's median CPU a request,
    per thread, and the median of its per-round ratios to --kind."""
    kinds = [args.kind, *args.alternate]
    for kind in kinds:
        await warm(app, kind, key, click_id, args.inflight)
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for n in range(args.repeat):
        for kind in kinds if n % 2 == 0 else kinds[::-1]:
            run = await measured(app, kind, key, click_id, args)
            spent = {"all": run.cpu, **run.threads}
            runs[kind].append({name: seconds / run.done * 1e6 for name, seconds in spent.items()})
    print(
        f"{args.repeat} alternating rounds of {args.requests} requests, {args.inflight} in flight:"
    )
    for kind in kinds:
        ratios = [b["all"] / a["all"] for a, b in zip(runs[args.kind], runs[kind], strict=True)]
        per_thread = ", ".join(
            f"{name} {median:.1f}"
            for name in runs[kind][0]
            if name != "all" and (median := statistics.median(r[name] for r in runs[kind])) >= 0.5
        )
        print(
            f"  {kind:<18} {statistics.median(r['all'] for r in runs[kind]):6.1f} us CPU a "
            f"request, {statistics.median(ratios):6.1%} of {args.kind} ({per_thread})"
        )


async def watch(app: Any, key: str) -> tuple[asyncio.Task[None], list[int]]:
    """An event debugger stream open on `key`'s partner for the rest of the run, its bytes
    counted (the request path then builds and sends an event for each watched request)."""
    received = [0]
    scope = {
        "type": "http", "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8080),
        "root_path": "", "method": "GET", "path": "/v1/api/debug/stream",
        "raw_path": b"/v1/api/debug/stream", "query_string": b"",
        "client": ("203.0.113.7", 40001), "headers": [(b"authorization", f"Bearer {key}".encode())],
    }  # fmt: skip
    requested = False
    forever = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await forever.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        received[0] += len(message.get("body", b""))

    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.sleep(1.0)  # its lease goes round the bus
    return task, received


async def mint_click(app: Any) -> str:
    """A click to convert on, through the real GET /v1/click of a link signed here."""
    link = sign_link(ClickLink("https://shop.example.com/", tag_id="adv_001"), SECRET, "http://x")
    sent = await call(app, "GET", "/v1/click", [], query=link.split("?", 1)[1].encode())
    location = dict(sent[0]["headers"])[b"location"].decode()
    return parse_qs(urlsplit(location).query)["thrad_click_id"][0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="collect",
    )
    parser.add_argument(
        "--alternate",
        choices=KINDS,
        nargs="+",
        default=[],
        help="kinds that take turns with --kind on one app, --repeat rounds (medians, ratios)",
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best one is shown")
    parser.add_argument(
        "--watch",
        choices=("none", "other", "same"),
        default="none",
        help="an event debugger stream open on another partner, or on the one sending",
    )
    add_store_option(parser)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--write-timeout",
        type=float,
        default=WRITE_TIMEOUT_S,
        help="seconds a request waits for its commit (longer under valgrind)",
    )
    parser.add_argument(
        "--multiprocess-metrics",
        action="store_true",
        help="metrics in files shared by workers, as `serve --workers N` keeps them",
    )
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime, cumulative")
    asyncio.run(main(parser.parse_args()))
