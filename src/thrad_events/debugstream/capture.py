"""What one request leaves for the event debugger, noted by the pipeline while someone watches.

The HTTP wrapper sets `current` only when a stream is open somewhere (hub.DebugHub.active), so
that when nobody watches the pipeline's whole cost is one context-variable read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from thrad_events.errors import IngestError, Outcome
from thrad_events.store.records import ApiKeyRecord
from thrad_events.store.tags import TagRecord


@dataclass(slots=True)
class Capture:
    partner_id: str | None = None
    key_id: str | None = None
    body: bytes = b""
    # The row built for a single request (stored, or found a duplicate).
    row: Mapping[str, Any] | None = None
    # A batch: each item's answer, and the rows built for the valid items by their index.
    items: Sequence[Outcome | IngestError] | None = None
    item_rows: dict[int, Mapping[str, Any]] = field(default_factory=dict)

    def received(self, key: ApiKeyRecord | TagRecord, body: bytes) -> None:
        # A browser Tag's request has no key: its tag stands in.
        key_id = key.key_id if isinstance(key, ApiKeyRecord) else f"tag:{key.tag_id}"
        self.partner_id, self.key_id, self.body = key.partner_id, key_id, body


current: ContextVar[Capture | None] = ContextVar("thrad_debug_capture", default=None)
