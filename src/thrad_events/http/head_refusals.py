"""Refusals of a request head (431, a head's 408, a 400 for HTTP the parser cannot read) kept as
rejections when the head carried a valid key.

The HTTP protocol (http/protocol.py) answers these before the app sees a request, then calls this
hook with the path, the Authorization header and the request id it answered with. The key is
looked up in the background and a known key's refusal goes where the endpoints' refusals go: the
rejection log line and the delivery recorder (ingest/delivery.py), under the path's route.
"""

from __future__ import annotations

import asyncio
import logging

from thrad_events.auth.keys import KeyCache
from thrad_events.errors import IngestError
from thrad_events.http.admission import attribute_to_key
from thrad_events.http.endpoint import account_refusal
from thrad_events.http.errors import STATUS
from thrad_events.ingest.delivery import DeliveryRecorder
from thrad_events.logs import RejectionLog, request_id

log = logging.getLogger(__name__)

# Key lookups in flight at most: past it (a flood of refused heads), refusals are not kept.
MAX_PENDING = 256


class HeadRefusals:
    def __init__(
        self,
        keys: KeyCache,
        delivery: DeliveryRecorder,
        rejections: RejectionLog,
        routes: dict[str, str],
    ) -> None:
        self._keys = keys
        self._delivery = delivery
        self._rejections = rejections
        # path -> route name, for the routes whose refusals are kept.
        self._routes = routes
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(self, path: str, authorization: str, error: IngestError, rid: str) -> None:
        route = self._routes.get(path)
        if route is None or len(self._pending) >= MAX_PENDING:
            return
        task = asyncio.get_running_loop().create_task(self._keep(route, authorization, error, rid))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _keep(self, route: str, authorization: str, error: IngestError, rid: str) -> None:
        request_id.set(rid)  # this task's own context: its log lines carry the request's id
        try:
            await attribute_to_key(self._keys, authorization, error)
        except Exception:
            log.exception("looking up the key of a refused request head failed")
            return
        if error.partner_id is None:
            return
        account_refusal(route, STATUS[error.outcome], error, rid, self._rejections, self._delivery)
