"""Soak test behind `make soak`: mixed load with injected faults, then every ack checked.

It serves `thrad-events serve --workers 2` on a fresh SQLite file (127.0.0.1 only) and drives it
for --minutes with an async client of bounded concurrency at a paced rate: single collects,
collect batches and conversions against a pool of real clicks. Meanwhile, every --fault-every
seconds, one fault in turn:

- storage_pause   another connection holds BEGIN EXCLUSIVE on the database for --pause seconds:
                  writes stall, the server answers 503 with Retry-After, then recovers;
- worker_kill     one worker gets SIGKILL (uvicorn starts a new one);
- server_restart  SIGTERM to the server, which drains and exits, then a new one on the same
                  database and port.

The client acts as the contract tells a partner to: it retries on 429, 503 and network errors
with the same event_id / Idempotency-Key, honouring Retry-After. Every 204, `ok` or `duplicate`
is an acknowledgement. At the end the server is stopped, the tables are exported, and each
acknowledged event and conversion must be stored exactly once (no id may be stored twice). The
summary is printed; the exit status is non-zero on any loss, duplicate, unexpected answer or
server error.

    python bench/soak.py [--minutes 10] [--rate 250] [--concurrency 32] [--fault-every 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.server import PYTHON, clean_env, cli, create_key, free_port  # noqa: E402

TAG = "soak"
FAULTS = ("storage_pause", "worker_kill", "server_restart")
RETRY_STATUSES = frozenset({429, 503})


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    acks: int = 0
    status: Counter[int] = field(default_factory=Counter)
    network_errors: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    gave_up: int = 0
    ack_latency_s: list[float] = field(default_factory=list)
    acked_events: set[str] = field(default_factory=set)
    acked_conversions: set[str] = field(default_factory=set)
    faults: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


class SoakServer:
    """`thrad-events serve` on a fixed port, restartable on the same database and port."""

    def __init__(self, database_url: str, log_path: Path, workers: int) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "thrad_events",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=clean_env(self.database_url),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early; see {self.log_path}")
                try:
                    if http.get(f"{self.base_url}/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout_s:g} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            return []
        pids = []
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                pids.append(int(child))
        return pids

    def kill_worker(self) -> int:
        pid = random.choice(self.worker_pids())
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_replaced(self, killed: int, timeout_s: float = 60.0) -> None:
        """Until uvicorn has started a new worker in place of `killed`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) >= self.workers and killed not in pids:
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {killed} was not replaced in {timeout_s:g} s")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait for the drain; SIGKILL the group if it does not end in time."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        self.exit_codes.append(code)
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def error_lines(self) -> list[str]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if "Traceback" in line:
                    found.append(line)
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                found.append(line)
        return found


class Pacer:
    """Spaces request starts evenly at `rate` per second across all tasks (no catch-up burst)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(self.next_at, now)
        self.next_at = slot + self.interval
        await asyncio.sleep(slot - now)


@dataclass
class Operation:
    """One logical request; every retry sends the same body and headers (the same ids)."""

    kind: str
    path: str
    body: Any
    headers: dict[str, str]
    ids: list[str]


def _collect_body(event_id: str) -> dict[str, Any]:
    return {
        "event_name": "page_view",
        "tag_id": TAG,
        "event_id": event_id,
        "page_url": "https://shop.example.com/checkout",
        "params": {"step": "shipping", "soak": True},
    }


def make_operation(clicks: list[str]) -> Operation:
    roll = random.random()
    if roll < 0.6:
        event_id = uuid.uuid4().hex
        return Operation("collect", "/v1/api/collect", _collect_body(event_id), {}, [event_id])
    if roll < 0.7:
        ids = [uuid.uuid4().hex for _ in range(5)]
        batch = {"events": [_collect_body(event_id) for event_id in ids]}
        return Operation("collect_batch", "/v1/api/collect/batch", batch, {}, ids)
    key = f"soak-{uuid.uuid4().hex}"
    body: dict[str, Any] = {
        "click_id": random.choice(clicks),
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": round(random.uniform(1, 500), 2),
        "currency": "USD",
        "order_id": key,
    }
    return Operation("conversion", "/v1/api/conversion", body, {"Idempotency-Key": key}, [key])


def _retry_delay(attempt: int, answer: httpx.Response | None) -> float:
    """Exponential backoff with jitter, at least the server's Retry-After (capped)."""
    backoff: float = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
    if answer is not None:
        try:
            return max(backoff, min(5.0, float(answer.headers.get("retry-after", 0))))
        except ValueError:
            return backoff
    return backoff


async def run_operation(
    http: httpx.AsyncClient, op: Operation, stats: Stats, give_up: float
) -> None:
    started = time.monotonic()
    attempt = 0
    while True:
        answer: httpx.Response | None = None
        stats.requests += 1
        try:
            answer = await http.post(op.path, json=op.body, headers=op.headers)
        except httpx.TransportError as exc:
            stats.network_errors[type(exc).__name__] += 1
        else:
            stats.status[answer.status_code] += 1
            if answer.status_code not in RETRY_STATUSES:
                if _acknowledged(op, answer, stats):
                    stats.acks += 1
                    stats.ack_latency_s.append(time.monotonic() - started)
                    return
                if not op.ids:
                    return
        if time.monotonic() > give_up:
            stats.gave_up += 1
            return
        attempt += 1
        stats.retries += 1
        await asyncio.sleep(_retry_delay(attempt, answer))


def _acknowledged(op: Operation, answer: httpx.Response, stats: Stats) -> bool:
    """Record what `answer` acknowledges; False when some of `op` must be sent again.

    A batch item refused as `unavailable` is retried alone (op.ids shrinks to those); any other
    refusal is unexpected for this well-formed load and ends the operation.
    """
    if op.kind == "collect" and answer.status_code == 204:
        stats.acked_events.update(op.ids)
        return True
    ok = answer.status_code == 200
    if op.kind == "conversion" and ok and answer.json().get("status") in ("ok", "duplicate"):
        stats.acked_conversions.update(op.ids)
        return True
    if op.kind == "collect_batch" and answer.status_code == 200:
        again = []
        for event_id, result in zip(op.ids, answer.json()["results"], strict=True):
            if result["status"] in ("ok", "duplicate"):
                stats.acked_events.add(event_id)
            elif result["error"]["code"] == "unavailable":
                again.append(event_id)
            else:
                stats.unexpected.append(f"batch item: {result}")
        if not again:
            return True
        op.ids = again
        op.body = {"events": [_collect_body(event_id) for event_id in again]}
        return False
    stats.unexpected.append(f"{op.kind}: {answer.status_code} {answer.text[:200]}")
    op.ids = []
    return False


async def load(
    http: httpx.AsyncClient,
    clicks: list[str],
    stats: Stats,
    *,
    until: float,
    rate: float,
    concurrency: int,
    grace_s: float,
) -> None:
    pacer = Pacer(rate)

    async def client_task() -> None:
        while time.monotonic() < until:
            await pacer.wait()
            await run_operation(http, make_operation(clicks), stats, until + grace_s)

    await asyncio.gather(*(client_task() for _ in range(concurrency)))


def hold_exclusive_lock(path: Path, seconds: float) -> None:
    """Storage paused: nobody else can write while this connection holds the lock."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


async def wait_ready(http: httpx.AsyncClient, started: float, timeout_s: float = 60.0) -> float:
    """Seconds from `started` until /readyz answers 200."""
    while time.monotonic() - started < timeout_s:
        try:
            if (await http.get("/readyz", timeout=2)).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not recover within {timeout_s:g} s")


async def inject_faults(
    server: SoakServer, stats: Stats, *, begin: float, until: float, every_s: float, pause_s: float
) -> None:
    db_path = Path(server.database_url.removeprefix("sqlite:///"))
    async with httpx.AsyncClient(base_url=server.base_url) as probe:
        for number in itertools.count():
            at = begin + every_s * (number + 1)
            if at + every_s / 2 > until:
                return  # leave the last stretch to run undisturbed
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            kind = FAULTS[number % len(FAULTS)]
            started = time.monotonic()
            before = stats.status[503]
            errors_before = sum(stats.network_errors.values())
            detail: dict[str, Any] = {}
            if kind == "storage_pause":
                await asyncio.to_thread(hold_exclusive_lock, db_path, pause_s)
            elif kind == "worker_kill":
                detail["killed_pid"] = server.kill_worker()
                await asyncio.to_thread(server.wait_replaced, detail["killed_pid"])
            else:
                detail["exit_code"] = await asyncio.to_thread(server.stop)
                await asyncio.to_thread(server.start)
            action_s = time.monotonic() - started
            # From the fault's start until /readyz answers 200 again.
            recovered_s = await wait_ready(probe, started)
            stats.faults.append(
                {
                    "fault": kind,
                    "at_s": round(started - begin, 1),
                    "action_s": round(action_s, 2),
                    "recovered_s": round(recovered_s, 2),
                    "503s": stats.status[503] - before,
                    "network_errors": sum(stats.network_errors.values()) - errors_before,
                    **detail,
                }
            )
            print(f"  fault {stats.faults[-1]}", flush=True)


def mint_clicks(server: SoakServer, count: int) -> list[str]:
    link = cli(
        server.database_url,
        "clicks",
        "link",
        "--landing-url",
        "https://shop.example.com/landing",
        "--base-url",
        server.base_url,
    ).strip()
    clicks = []
    with httpx.Client() as http:
        for _ in range(count):
            location = http.get(link).headers["location"]
            clicks.append(str(httpx.URL(location).params["thrad_click_id"]))
    return clicks


def exported(database_url: str, table: str) -> Iterator[dict[str, Any]]:
    """`thrad-events export TABLE` streamed line by line (the tables can be large)."""
    process = subprocess.Popen(
        [PYTHON, "-m", "thrad_events", "export", table],
        env=clean_env(database_url),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip():
            yield json.loads(line)
    if process.wait() != 0:
        raise RuntimeError(f"export {table} failed")


def verify(database_url: str, stats: Stats) -> dict[str, int]:
    events = Counter(
        row["event_id"] for row in exported(database_url, "events") if row["tag_id"] == TAG
    )
    conversions = Counter(row["idempotency_key"] for row in exported(database_url, "conversions"))
    return {
        "events_stored": sum(events.values()),
        "conversions_stored": sum(conversions.values()),
        "lost_events": len(stats.acked_events - events.keys()),
        "lost_conversions": len(stats.acked_conversions - conversions.keys()),
        "duplicate_events": sum(n - 1 for n in events.values() if n > 1),
        "duplicate_conversions": sum(n - 1 for n in conversions.values() if n > 1),
        "stored_unacked": len(events.keys() - stats.acked_events)
        + len(conversions.keys() - stats.acked_conversions),
    }


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def soak(args: argparse.Namespace, server: SoakServer, api_key: str) -> Stats:
    stats = Stats()
    clicks = mint_clicks(server, 50)
    begin = time.monotonic()
    until = begin + args.minutes * 60
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
        limits=httpx.Limits(max_connections=args.concurrency),
    ) as http:
        await asyncio.gather(
            load(
                http,
                clicks,
                stats,
                until=until,
                rate=args.rate,
                concurrency=args.concurrency,
                grace_s=args.grace,
            ),
            inject_faults(
                server,
                stats,
                begin=begin,
                until=until,
                every_s=args.fault_every,
                pause_s=args.pause,
            ),
        )
    stats.elapsed_s = time.monotonic() - begin
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=250.0, help="requests started per second")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at most")
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds between faults")
    parser.add_argument("--pause", type=float, default=4.0, help="storage pause, seconds")
    parser.add_argument("--grace", type=float, default=60.0, help="retry time after the run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database and log")
    args = parser.parse_args()
    random.seed(args.seed)

    workdir = Path(tempfile.mkdtemp(prefix="thrad-soak-"))
    database_url = f"sqlite:///{workdir / 'soak.db'}"
    server = SoakServer(database_url, workdir / "server.log", args.workers)
    api_key = create_key(database_url, "soak", "soak", "--rate-limit", "1000000")["api_key"]
    print(
        f"soak: {args.minutes:g} min, {args.workers} workers, {args.rate:g} req/s, "
        f"{args.concurrency} in flight, a fault every {args.fault_every:g} s; {workdir}",
        flush=True,
    )
    try:
        server.start()
        stats = asyncio.run(soak(args, server, api_key))
        server.stop()
    finally:
        server.kill()
    elapsed_s = round(stats.elapsed_s, 1)
    checked = verify(database_url, stats)
    errors = server.error_lines()
    summary = {
        "minutes": args.minutes,
        "elapsed_s": elapsed_s,
        "requests": stats.requests,
        "req_per_s": round(stats.requests / elapsed_s),
        "acks": stats.acks,
        "events_acked": len(stats.acked_events),
        "conversions_acked": len(stats.acked_conversions),
        "status": dict(sorted(stats.status.items())),
        "503s": stats.status[503],
        "429s": stats.status[429],
        "network_errors": dict(stats.network_errors),
        "retries": stats.retries,
        "gave_up": stats.gave_up,
        "ack_latency_p50_ms": round(percentile(stats.ack_latency_s, 0.5) * 1000, 1),
        "ack_latency_p99_ms": round(percentile(stats.ack_latency_s, 0.99) * 1000, 1),
        "ack_latency_max_s": round(max(stats.ack_latency_s, default=0.0), 2),
        **checked,
        "lost": checked["lost_events"] + checked["lost_conversions"],
        "duplicates": checked["duplicate_events"] + checked["duplicate_conversions"],
        "unexpected_answers": len(stats.unexpected),
        "server_errors_logged": len(errors),
        "server_exit_codes": server.exit_codes,
        "faults": stats.faults,
    }
    print(json.dumps(summary, indent=2))
    for line in stats.unexpected[:10] + errors[:10]:
        print("  ", line[:300])
    failed = bool(
        summary["lost"]
        or summary["duplicates"]
        or stats.unexpected
        or errors
        or any(server.exit_codes)
    )
    verdict = "FAILED" if failed else "OK"
    print(
        f"\n{verdict}: {summary['requests']} requests, {summary['acks']} acks, "
        f"{summary['503s']} 503s, {summary['retries']} retries, lost={summary['lost']}, "
        f"duplicates={summary['duplicates']}"
    )
    if not args.keep and not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
