"""What the store tests share: a row builder and a way to run work against a started store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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
