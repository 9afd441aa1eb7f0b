"""Enrichment cost per event: the pipeline's row building with and without the enrich stage.

Builds collect rows exactly as the endpoint does (validation, tag_id, params, addresses) with
no enricher, then with the real one (the .mmdb or the bundled countries, ua-parser with its
cache, campaign fields, consent), and prints the best per-event time of each and the difference.
"Warm" repeats a realistic mix of a few user agents and addresses, as traffic does, so the
caches answer; "cold" gives every event a user agent and an address not seen before.

    python bench/enrich.py [--geoip-db PATH] [--events 20000] [--repeat 5] [--cold]

The .mmdb defaults to MaxMind's GeoIP2 City test database in tests/data (in the repository,
or $THRAD_TESTDATA); with --geoip-db "" the bundled country data answers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from thrad_events.enrich.enricher import RowEnricher  # noqa: E402
from thrad_events.enrich.geo import open_geo  # noqa: E402
from thrad_events.enrich.ip import TrustedProxies  # noqa: E402
from thrad_events.enrich.useragent import UserAgentParser  # noqa: E402
from thrad_events.ingest.pipeline import Ingestor, RequestContext  # noqa: E402
from thrad_events.store.base import Store  # noqa: E402
from thrad_events.store.records import ApiKeyRecord  # noqa: E402

BUDGET_US = 30.0
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
# Addresses the GeoIP2 City test database knows (IPv4 and IPv6), and one it does not.
ADDRESSES = ["81.2.69.142", "89.160.20.112", "216.160.83.56", "2001:218::1", "8.8.8.8"]
KEY = ApiKeyRecord(
    key_id="key_bench",
    partner_id="ptn_bench",
    partner_name="bench",
    label="bench",
    key_hash="0" * 64,
    key_prefix="thr_0000",
    created_at="2026-01-01T00:00:00.000000Z",
    expires_at=None,
    revoked_at=None,
    last_used_at=None,
    rate_limit=None,
)


def default_geoip_db() -> str:
    given = os.environ.get("THRAD_TESTDATA")
    base = Path(given) if given else ROOT / "tests" / "data"
    path = base / "geoip" / "GeoIP2-City-Test.mmdb"
    return str(path.resolve()) if path.is_file() else ""


def bodies(count: int, cold: bool, rng: random.Random) -> list[bytes]:
    out = []
    for n in range(count):
        user_agent = rng.choice(USER_AGENTS)
        address = rng.choice(ADDRESSES)
        if cold:
            user_agent += f" build/{n}"
            address = f"81.2.{n // 256 % 256}.{n % 256}"
        body: dict[str, Any] = {
            "event_name": "page_view",
            "tag_id": "adv_001",
            "event_id": f"evt-{n}",
            "timestamp": 1771879200,
            "page_url": "https://shop.example.com/checkout?utm_source=thrad&utm_medium=chat"
            "&utm_campaign=spring",
            "user_agent": user_agent,
            "client_ip": address,
            "params": {"step": "shipping"},
        }
        if n % 4 == 0:
            body["consent"] = {"gdpr_applies": True, "ad_storage": "denied"}
        out.append(json.dumps(body).encode())
    return out


def rows_us(ingestor: Ingestor, events: list[bytes], repeat: int) -> float:
    """Best time of `repeat` passes building every event's row, per event, in µs."""
    context = RequestContext(peer_ip="127.0.0.1", received_at=datetime.now(UTC))
    build = ingestor.event_row
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for body in events:
            build(body, KEY, context)
        best = min(best, time.perf_counter() - started)
    return best / len(events) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geoip-db", default=None, help="a .mmdb; '' for the bundled data")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="also time unseen UAs and IPs")
    args = parser.parse_args()
    geoip_db = default_geoip_db() if args.geoip_db is None else args.geoip_db

    store = cast(Store, None)  # row building does no I/O

    def ingestor(enricher: Any = None) -> Ingestor:
        extra = {"enricher": enricher} if enricher is not None else {}
        return Ingestor(
            store, proxies=TrustedProxies(()), click_secret="s" * 32, click_ttl_s=60, **extra
        )

    plain = ingestor()
    geo = open_geo(geoip_db or None)
    enriched = ingestor(RowEnricher(geo, UserAgentParser()))
    source = geo.source()
    print(f"geo: {source.kind} {source.database_type} ({source.path or 'bundled'})")

    rng = random.Random(7)
    scenarios = [("warm", bodies(args.events, cold=False, rng=rng))]
    if args.cold:
        scenarios.append(("cold", bodies(args.events, cold=True, rng=rng)))
    failed = False
    for name, events in scenarios:
        without = rows_us(plain, events, args.repeat)
        if name == "cold":
            # Every pass but the first would find the caches filled: one pass, fresh caches.
            fresh = ingestor(RowEnricher(open_geo(geoip_db or None), UserAgentParser()))
            with_ = rows_us(fresh, events, 1)
        else:
            with_ = rows_us(enriched, events, args.repeat)
        cost = with_ - without
        print(
            f"{name}: {without:6.2f} µs/event without enrichment, {with_:6.2f} µs with, "
            f"enrichment {cost:5.2f} µs/event"
            + (f" (budget {BUDGET_US:g} µs)" if name == "warm" else "")
        )
        print(
            f"{name}: {1e6 / without:,.0f} events/s without enrichment, {1e6 / with_:,.0f} "
            "with (row building on one core, no HTTP or storage)"
        )
        failed |= name == "warm" and cost > BUDGET_US
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
