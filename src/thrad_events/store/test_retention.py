"""The deletion of old test rows while the server runs: once at start, then every hour.

Each worker process runs it; the deletes are batches of their own (store/test_rows.py), so
several workers only take turns, and no batch holds the write lock for long. It runs on a
thread, never on the event loop. A failure is logged and tried again at the next round.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from thrad_events.instants import utcnow
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0


def purge_before(store: Store, retention_days: int) -> dict[str, int]:
    """Delete the test rows received more than `retention_days` ago; the rows per table."""
    return store.purge_test_rows(utcnow() - timedelta(days=retention_days))


async def purge_periodically(
    store: Store, retention_days: int, every_s: float = PURGE_EVERY_S
) -> None:
    """Until cancelled: delete old test rows now, then every `every_s` seconds."""
    while True:
        try:
            deleted = await asyncio.to_thread(purge_before, store, retention_days)
        except (StorageError, Exception) as exc:  # a round that failed must not end the task
            log.warning("old test rows not deleted, tried again in %.0f s: %s", every_s, exc)
        else:
            if any(deleted.values()):
                log.info("old test rows deleted", extra={"deleted": deleted})
        await asyncio.sleep(every_s)
