"""Thrad: the synchronous client (httpx.Client), with retries and typed errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
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
from thrad_events.client.errors import (
    ThradError,
    connection_error,
    error_from_response,
)
from thrad_events.client.retry import (
    Attempts,
    Clock,
    Jitter,
    should_retry_exception,
    should_retry_status,
)
from thrad_events.client.wire import BatchResult, ConversionStatus, Money

log = logging.getLogger("thrad_events.client")

OnRetry = Callable[[int, ThradError, float], None]
"""Called before each retry with the failed attempt's number, its error and the wait in seconds."""


class Thrad:
    """A client of Thrad's server-to-server Events API.

    Retries network errors, 429 and 5xx with exponential backoff and full jitter, honouring
    Retry-After, within `max_attempts` and a total `deadline_s` per call. A conversion carries
    the same Idempotency-Key on every attempt, so it is stored once however often it is sent; a
    collect is retried the same way, and is exactly-once when it carries an `event_id`.

    Thread-safe: one instance can serve a whole process. Close it (or use `with`) when done.
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
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
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
        # A caller's http_client stays the caller's to close.
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=timeout)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def collect(self, event_name: str, **fields: Any) -> None:
        """Send one event (POST /v1/api/collect); returns once the server has stored it.

        `fields` are the seeds' optional fields (tag_id, event_id, timestamp, page_url, params,
        ...); a datetime `timestamp` is sent as Unix seconds. Give an `event_id` to make
        retries exact: the server stores one event per (tag_id, event_id).
        """
        self.send_collect_body(wire.collect_body(event_name, fields))

    def conversion(
        self,
        click_id: str,
        conversion_time: datetime | str,
        conversion_value: Money,
        currency: str,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> ConversionStatus:
        """Report one conversion (POST /v1/api/conversion): "ok", or "duplicate" when known.

        `conversion_time` is a datetime (naive means UTC) or an ISO-8601 string;
        `conversion_value` a Decimal, int or float, sent with its exact digits. A retry whose
        earlier attempt was stored but not answered comes back "duplicate": stored once either
        way. Raises ClickNotFoundError when the click_id is unknown.
        """
        body = wire.conversion_body(click_id, conversion_time, conversion_value, currency, fields)
        return self.send_conversion_body(body, idempotency_key=idempotency_key)

    def collect_batch(self, events: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Send up to 500 events in one request; one result per event, in order."""
        wire.check_batch_size(events, "events")
        items = wire.batch_collect_items(events)
        response = self._request(COLLECT_BATCH_PATH, wire.dumps({"events": items}))
        return wire.batch_result(response, len(items))

    def conversion_batch(self, conversions: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Report up to 500 conversions in one request; one result per conversion, in order.

        Each item is a dict of the single call's fields. An item without event_id or order_id
        gets a generated event_id so that a retried batch stores it once.
        """
        wire.check_batch_size(conversions, "conversions")
        items = wire.batch_conversion_items(conversions)
        response = self._request(CONVERSION_BATCH_PATH, wire.dumps({"conversions": items}))
        return wire.batch_result(response, len(items))

    def send_collect_body(self, body: Mapping[str, Any]) -> None:
        """Send a collect body as given (the CLI's path: the server judges the fields)."""
        self._request(COLLECT_PATH, wire.dumps(body))

    def send_conversion_body(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> ConversionStatus:
        """Send a conversion body as given, with one Idempotency-Key for every attempt."""
        key = wire.idempotency_key_for(body, idempotency_key)
        response = self._request(CONVERSION_PATH, wire.dumps(body), idempotency_key=key)
        return wire.conversion_status(response)

    def send_encoded_collects(
        self, encoded: Sequence[bytes], *, batch: bool, on_retry: OnRetry | None = None
    ) -> BatchResult | None:
        """The background sender's path: events already encoded, retries reported.

        With `batch`, one POST to the batch endpoint and its per-item result; without, the one
        event is sent to the single endpoint and None returned.
        """
        if not batch:
            [content] = encoded
            self._request(COLLECT_PATH, content, on_retry=on_retry)
            return None
        content = b'{"events":[' + b",".join(encoded) + b"]}"
        response = self._request(COLLECT_BATCH_PATH, content, on_retry=on_retry)
        return wire.batch_result(response, len(encoded))

    def _request(
        self,
        path: str,
        content: bytes,
        *,
        idempotency_key: str | None = None,
        on_retry: OnRetry | None = None,
    ) -> httpx.Response:
        """POST a JSON body with retries; the 2xx answer, or the last attempt's error raised."""
        url = self._config.url(path)
        headers = self._config.headers(idempotency_key)
        attempts = Attempts(self._config.retry, self._clock, self._jitter)
        while True:
            attempts.begin()
            timeout = self._config.attempt_timeout(attempts.remaining_s())
            try:
                response = self._http.post(url, content=content, headers=headers, timeout=timeout)
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
            if on_retry is not None:
                on_retry(attempts.count, error, delay)
            self._sleep(delay)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Thrad:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
