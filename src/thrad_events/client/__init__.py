"""The Python SDK of Thrad's server-to-server Events API: collect events, report conversions.

    from thrad_events.client import Thrad

    with Thrad(api_key="...") as thrad:
        thrad.collect("page_view", tag_id="adv_001", event_id="pv-1")
        thrad.conversion(click_id, "2026-02-19T18:00:00Z", Decimal("49.99"), "USD",
                         order_id="order-123")

`Thrad` (sync) and `AsyncThrad` (asyncio) retry network errors, 429 and 5xx with exponential
backoff and jitter, honouring Retry-After, and send one Idempotency-Key on every attempt of a
conversion. Other failures raise at once as a `ThradError` subclass named after the server's
error code (errors.py). `BackgroundSender` queues collects and sends them in batches from a
worker thread. This package imports nothing else of thrad_events: it only needs httpx.
"""

from thrad_events.client.async_ import AsyncThrad
from thrad_events.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ClickNotFoundError,
    ErrorDetail,
    EventDroppedError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ThradError,
    ValidationError,
)
from thrad_events.client.sender import BackgroundSender, SenderStats
from thrad_events.client.sync import Thrad
from thrad_events.client.wire import BatchItemResult, BatchResult

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncThrad",
    "AuthenticationError",
    "BackgroundSender",
    "BatchItemResult",
    "BatchResult",
    "ClickNotFoundError",
    "ErrorDetail",
    "EventDroppedError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RequestTimeoutError",
    "SenderStats",
    "ServerError",
    "Thrad",
    "ThradError",
    "ValidationError",
]
