"""What the stores answer in: a stored API key (ApiKeyRecord), a row as handed to a store (Row),
and how a write went (InsertResult; RowResult, one row's answer in a many-row write)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from thrad_events.instants import format_time, utcnow
from thrad_events.store.errors import StorageError

Row = Mapping[str, Any]


class InsertResult(enum.Enum):
    INSERTED = "inserted"
    DUPLICATE = "duplicate"
    CLICK_NOT_FOUND = "click_not_found"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    partner_id: str
    partner_name: str
    label: str
    key_hash: str
    key_prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    rate_limit: int | None
    # A test key (secret thr_test_...): its rows are stored flagged test (store/test_rows.py).
    test: bool = False

    def status(self, now: datetime | None = None) -> str:
        """`revoked`, `expired` or `active`: what a request with this key meets at `now`
        (the current time when not given, read only for a key that can expire)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= format_time(now or utcnow()):
            return "expired"
        return "active"


# One row's answer in a many-row write: how it was stored, or why it alone failed.
RowResult = InsertResult | StorageError
