"""Report benchmark: one million events in a temporary SQLite database, each report timed.

Loads synthetic but realistic rows (five partners, one of them large; twenty tags; the standard
event names; a few params; clicks on twenty campaigns and conversions in three currencies, all
within the last seven days) in one transaction each, then runs every report through the store,
as the HTTP endpoint and the CLI do, and prints the best and the first of a few runs.

    python bench/reports.py [--events 1000000] [--repeat 3] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from thrad_events.deadline import Deadline  # noqa: E402
from thrad_events.fields import CLICKS, CONVERSIONS, EVENTS  # noqa: E402
from thrad_events.instants import format_time  # noqa: E402
from thrad_events.reports.query import Report, parse_report_query  # noqa: E402
from thrad_events.reports.run import answer  # noqa: E402
from thrad_events.store.sqlite import SqliteStore  # noqa: E402

PARTNERS = [("ptn_acme", 0.7), ("ptn_bravo", 0.1), ("ptn_cargo", 0.1), ("ptn_delta", 0.05)]
PARTNERS.append(("ptn_echo", 1 - sum(share for _, share in PARTNERS)))
EVENT_NAMES = [
    ("page_view", 40),
    ("contents_viewed", 20),
    ("impression", 15),
    ("items_added", 8),
    ("checkout_started", 5),
    ("order_created", 3),
    ("signup_started", 3),
    ("lead_created", 2),
    ("registration_completed", 2),
    ("custom", 2),
]
STEPS = ["cart", "shipping", "payment", "review", None]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "CA", None]
BROWSERS = ["Chrome", "Mobile Safari", "Firefox", "Edge", "Samsung Internet", None]
CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP"]

# (name, report, query-string pairs, partner or None for an operator)
SCENARIOS: list[tuple[str, Report, list[tuple[str, str]], str | None]] = [
    ("events by day (partner)", Report.EVENTS, [("group_by", "day")], "ptn_acme"),
    ("events total (operator)", Report.EVENTS, [], None),
    ("events by event_name (partner)", Report.EVENTS, [("group_by", "event_name")], "ptn_acme"),
    ("events by hour,tag_id (partner)", Report.EVENTS, [("group_by", "hour,tag_id")], "ptn_acme"),
    ("events by partner_id (operator)", Report.EVENTS, [("group_by", "partner_id")], None),
    (
        "events by geo_country,ua_browser (operator)",
        Report.EVENTS,
        [("group_by", "geo_country,ua_browser")],
        None,
    ),
    ("events by params.step (partner)", Report.EVENTS, [("group_by", "params.step")], "ptn_acme"),
    (
        "events by day, params.step:shipping (partner)",
        Report.EVENTS,
        [("group_by", "day"), ("filter", "params.step:shipping")],
        "ptn_acme",
    ),
    (
        "events by event_name, tag_id:adv_001 (partner)",
        Report.EVENTS,
        [("group_by", "event_name"), ("filter", "tag_id:adv_001")],
        "ptn_acme",
    ),
    (
        "conversions by day,currency (partner)",
        Report.CONVERSIONS,
        [("group_by", "day,currency")],
        "ptn_acme",
    ),
    (
        "conversions by campaign_id,ad_id (partner)",
        Report.CONVERSIONS,
        [("group_by", "campaign_id,ad_id")],
        "ptn_acme",
    ),
    (
        "conversions by event_type (operator)",
        Report.CONVERSIONS,
        [("group_by", "event_type")],
        None,
    ),
    ("funnel by campaign_id (operator)", Report.FUNNEL, [], None),
    ("funnel by campaign_id (partner)", Report.FUNNEL, [], "ptn_acme"),
    (
        "funnel by campaign_id,ad_id, campaign_id:cmp_07 (operator)",
        Report.FUNNEL,
        [("group_by", "campaign_id,ad_id"), ("filter", "campaign_id:cmp_07")],
        None,
    ),
]


def _weighted(choices: list[tuple[str, float]], count: int, rng: random.Random) -> list[str]:
    names = [name for name, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(names, weights, k=count)


def _moments(count: int, start: datetime, span_s: float, rng: random.Random) -> list[str]:
    # In arrival order, as the service appends them.
    offsets = sorted(rng.random() * span_s for _ in range(count))
    return [format_time(start + timedelta(seconds=offset)) for offset in offsets]


def events(
    count: int, clicks: list[str], start: datetime, span_s: float, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    partners = _weighted(PARTNERS, count, rng)
    names = _weighted([(n, float(w)) for n, w in EVENT_NAMES], count, rng)
    moments = _moments(count, start, span_s, rng)
    for i in range(count):
        params: dict[str, Any] = {
            "integration": "partner_s2s",
            "partner_id": partners[i],
            "api_key_label": "prod",
        }
        step = rng.choice(STEPS)
        if step is not None:
            params["step"] = step
        if names[i] == "items_added":
            params.update(content_id=f"sku_{rng.randrange(500)}", quantity=rng.randrange(1, 4))
        row = {
            "received_at": moments[i],
            "partner_id": partners[i],
            "event_name": names[i],
            "tag_id": f"adv_{rng.randrange(20):03d}",
            "event_id": f"evt_{i}",
            "timestamp": 1771879200 + i,
            "page_url": "https://shop.example.com/checkout",
            "channel": "server",
            "session_id": f"sess_{rng.randrange(count // 5 + 1)}",
            "click_id": rng.choice(clicks) if rng.random() < 0.1 else None,
            "params": json.dumps(params, separators=(",", ":")),
            "geo_country": rng.choice(COUNTRIES),
            "ua_browser": rng.choice(BROWSERS),
        }
        yield tuple(row.get(column) for column in EVENTS.columns)


def click_rows(
    count: int, start: datetime, span_s: float, rng: random.Random
) -> list[tuple[Any, ...]]:
    rows = []
    for i, moment in enumerate(_moments(count, start, span_s, rng)):
        campaign = rng.randrange(20)
        row = {
            "click_id": f"{i:08x}-0000-4000-8000-000000000000",
            "received_at": moment,
            "expires_at": 0,
            "landing_url": "https://shop.example.com/",
            "tag_id": f"adv_{campaign:03d}",
            "campaign_id": f"cmp_{campaign:02d}",
            "ad_id": f"ad_{campaign:02d}_{rng.randrange(5)}",
        }
        rows.append(tuple(row.get(column) for column in CLICKS.columns))
    return rows


def conversion_rows(
    clicks: list[tuple[Any, ...]], share: float, rng: random.Random
) -> list[tuple[Any, ...]]:
    rows = []
    click_at = CLICKS.columns.index("received_at")
    for i, click in enumerate(rng.sample(clicks, int(len(clicks) * share))):
        clicked = datetime.fromisoformat(click[click_at])
        converted = clicked + timedelta(seconds=rng.expovariate(1 / 3600))
        partner = _weighted(PARTNERS, 1, rng)[0]
        row = {
            "received_at": format_time(converted),
            "partner_id": partner,
            "click_id": click[0],
            "conversion_time": converted.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conversion_value": f"{rng.randrange(100, 50000) / 100:.2f}",
            "currency": rng.choice(CURRENCIES),
            "event_type": rng.choice(["purchase_completed"] * 4 + ["subscription_created"]),
            "order_id": f"order-{i}",
            "dedupe_key": f"order-{i}",
            "channel": "server",
            "params": json.dumps({"integration": "partner_s2s", "partner_id": partner}),
        }
        rows.append(tuple(row.get(column) for column in CONVERSIONS.columns))
    return rows


def load(path: Path, count: int, rng: random.Random) -> dict[str, int]:
    now = datetime.now(UTC)
    span_s = timedelta(days=7).total_seconds() - 3600  # all inside the default range
    start = now - timedelta(days=7) + timedelta(minutes=30)
    clicks = click_rows(count // 10, start, span_s, rng)
    conversions = conversion_rows(clicks, 0.2, rng)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN")
    for table, columns, rows in (
        ("clicks", CLICKS.columns, clicks),
        ("conversions", CONVERSIONS.columns, conversions),
        ("events", EVENTS.columns, events(count, [c[0] for c in clicks], start, span_s, rng)),
    ):
        marks = ", ".join("?" for _ in columns)
        connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
    connection.execute("COMMIT")
    counts = {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("events", "clicks", "conversions")
    }
    connection.close()
    return counts


def time_reports(store: SqliteStore, repeat: int) -> None:
    print(f"{'report':<60} {'groups':>7} {'first s':>8} {'best s':>8}")
    for name, report, items, partner in SCENARIOS:
        runs = []
        groups = 0
        for _ in range(repeat):
            query = parse_report_query(report, items, partner_id=partner, now=datetime.now(UTC))
            started = time.perf_counter()
            found = answer(store, query, Deadline.after(3600))
            runs.append(time.perf_counter() - started)
            groups = len(found.rows)
        print(f"{name:<60} {groups:>7} {runs[0]:>8.3f} {min(runs):>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the database at this path")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="thrad-bench-reports-") as folder:
        path = args.keep or Path(folder) / "reports.db"
        store = SqliteStore(f"sqlite:///{path}")
        store.migrate()
        started = time.perf_counter()
        counts = load(path, args.events, random.Random(args.seed))
        print(f"loaded {counts} in {time.perf_counter() - started:.1f} s")
        try:
            time_reports(store, args.repeat)
        finally:
            store.close_sync()


if __name__ == "__main__":
    main()
