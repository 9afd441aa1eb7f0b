"""What the store tests share: a row builder and a way to run work against a started store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
NOW = datetime(2026, 2, 19, 18, 0, 0, 123456, tzinfo=UTC)
PARTNER = "ptn_test"


class Startable(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


def run(store: Startable, work: Callable[[], Awaitable[T]]) -> T:
    """Start the store's writer, run `work`, and close it again, in one event loop."""

    async def main() -> T:
        await store.start()
        try:
            return await work()
        finally:
            await store.close()

    return asyncio.run(main())


def event(event_id: str | None, partner: str = PARTNER, **extra: Any) -> dict[str, Any]:
    return {
        "received_at": NOW,
        "partner_id": partner,
        "event_name": "page_view",
        "tag_id": "adv_001",
        "event_id": event_id,
        "timestamp": 1771524000,
        "channel": "server",
        "params": {"integration": "partner_s2s"},
        **extra,
    }


def click(click_id: str) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "received_at": NOW,
        "expires_at": 1771524000,
        "landing_url": "https://shop.example.com/",
    }


def conversion(
    click_id: str, dedupe_key: str | None, order_id: str | None = None
) -> dict[str, Any]:
    return {
        "received_at": NOW,
        "partner_id": PARTNER,
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": Decimal("49.990"),
        "currency": "USD",
        "event_type": "purchase_completed",
        "order_id": order_id,
        "dedupe_key": dedupe_key,
        "channel": "server",
        "params": {"price": Decimal("1.50")},
    }
