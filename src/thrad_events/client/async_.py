"""AsyncThrad: the asyncio client (httpx.AsyncClient); the same calls and retries as Thrad."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from thrad_events.client import wire
from thrad_events.client.config import (
    COLLECT_BATCH_PATH,
    COLLECT_PATH,
    CONVERSION_BATCH_PATH,
    CONVERSION_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_S,
    ClientConfig,
)
from thrad_events.client.errors import ThradError, connection_error, error_from_response
from thrad_events.client.retry import (
    Attempts,
    Clock,
    Jitter,
    should_retry_exception,
    should_retry_status,
)
from thrad_events.client.wire import BatchResult, ConversionStatus, Money

log = logging.getLogger("thrad_events.client")


class AsyncThrad:
    """The asyncio twin of `Thrad`: same options, same retries, every call awaited.

    Close it with `await client.aclose()` or use `async with`.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        max_attempts: int = 4,
        deadline_s: float | None = 30.0,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Jitter = random.random,
    ) -> None:
        self._config = ClientConfig.build(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_attempts=max_attempts,
            deadline_s=deadline_s,
            initial_backoff_s=initial_backoff_s,
            max_backoff_s=max_backoff_s,
        )
        if http_client is not None and transport is not None:
            raise ValueError("pass either transport or http_client, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=timeout)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    @property
    def base_url(self) -> str:
        return self._config.base_url

    async def collect(self, event_name: str, **fields: Any) -> None:
        """Send one event; see `Thrad.collect`."""
        await self._request(COLLECT_PATH, wire.dumps(wire.collect_body(event_name, fields)))

    async def conversion(
        self,
        click_id: str,
        conversion_time: datetime | str,
        conversion_value: Money,
        currency: str,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> ConversionStatus:
        """Report one conversion: "ok" or "duplicate"; see `Thrad.conversion`."""
        body = wire.conversion_body(click_id, conversion_time, conversion_value, currency, fields)
        key = wire.idempotency_key_for(body, idempotency_key)
        response = await self._request(CONVERSION_PATH, wire.dumps(body), idempotency_key=key)
        return wire.conversion_status(response)

    async def collect_batch(self, events: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Send up to 500 events in one request; one result per event, in order."""
        wire.check_batch_size(events, "events")
        items = wire.batch_collect_items(events)
        response = await self._request(COLLECT_BATCH_PATH, wire.dumps({"events": items}))
        return wire.batch_result(response, len(items))

    async def conversion_batch(self, conversions: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Report up to 500 conversions in one request; see `Thrad.conversion_batch`."""
        wire.check_batch_size(conversions, "conversions")
        items = wire.batch_conversion_items(conversions)
        response = await self._request(CONVERSION_BATCH_PATH, wire.dumps({"conversions": items}))
        return wire.batch_result(response, len(items))

    async def _request(
        self, path: str, content: bytes, *, idempotency_key: str | None = None
    ) -> httpx.Response:
        """POST a JSON body with retries; the 2xx answer, or the last attempt's error raised."""
        url = self._config.url(path)
        headers = self._config.headers(idempotency_key)
        attempts = Attempts(self._config.retry, self._clock, self._jitter)
        while True:
            attempts.begin()
            timeout = self._config.attempt_timeout(attempts.remaining_s())
            try:
                response = await self._http.post(
                    url, content=content, headers=headers, timeout=timeout
                )
            except httpx.TransportError as exc:
                error: ThradError = connection_error(exc)
                cause: BaseException | None = exc
                retryable = should_retry_exception(exc)
            else:
                if response.is_success:
                    return response
                error, cause = error_from_response(response), None
                retryable = should_retry_status(response.status_code)
            delay = attempts.delay_before_next(error.retry_after) if retryable else None
            if delay is None:
                raise error from cause
            log.debug(
                "retrying %s in %.3fs after attempt %d: %s", path, delay, attempts.count, error
            )
            await self._sleep(delay)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncThrad:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
