"""client/async_.py: AsyncThrad sends, retries and fails exactly as Thrad does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from tests.unit.client.conftest import FakeTime, Script, error_response
from thrad_events.client import AsyncThrad, ClickNotFoundError, ValidationError

MakeAsync = Callable[..., AsyncThrad]
CLICK = "11111111-1111-4111-8111-111111111111"


def test_async_conversion_is_retried_with_one_idempotency_key(
    make_async_client: MakeAsync, fake_time: FakeTime
) -> None:
    script = Script(
        error_response(503, "unavailable", headers={"Retry-After": "1"}),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, json={"status": "ok"}),
    )

    async def run() -> str:
        async with make_async_client(script) as client:
            return await client.conversion(
                CLICK, "2026-02-19T18:00:00Z", Decimal("49.990"), "USD", order_id="o-1"
            )

    assert asyncio.run(run()) == "ok"
    assert script.attempts == 3
    assert len(set(script.header("idempotency-key"))) == 1
    assert b'"conversion_value":49.990,' in script.requests[0].content
    assert fake_time.sleeps[0] == 1.0


def test_async_collect_returns_none_on_204(make_async_client: MakeAsync) -> None:
    script = Script(httpx.Response(204))

    async def run() -> None:
        async with make_async_client(script) as client:
            await client.collect("page_view", event_id="pv-1")

    asyncio.run(run())
    assert script.bodies() == [{"event_name": "page_view", "event_id": "pv-1"}]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(404, "click_not_found", ClickNotFoundError), (422, "validation_error", ValidationError)],
)
def test_async_client_errors_are_typed_and_not_retried(
    make_async_client: MakeAsync, status: int, code: str, error: type[Exception]
) -> None:
    script = Script(error_response(status, code), httpx.Response(200, json={"status": "ok"}))

    async def run() -> None:
        async with make_async_client(script) as client:
            await client.conversion(CLICK, "2026-02-19T18:00:00Z", 1, "USD")

    with pytest.raises(error):
        asyncio.run(run())
    assert script.attempts == 1


def test_async_batches_use_the_batch_endpoints(make_async_client: MakeAsync) -> None:
    answer = httpx.Response(
        200,
        json={
            "results": [{"index": 0, "status": "ok"}],
            "totals": {"ok": 1, "duplicate": 0, "error": 0},
        },
    )
    script = Script(answer)

    async def run() -> None:
        async with make_async_client(script) as client:
            assert (await client.collect_batch([{"event_name": "a"}])).ok == 1
            conversion = {
                "click_id": CLICK,
                "conversion_time": "2026-02-19T18:00:00Z",
                "conversion_value": 1,
                "currency": "USD",
                "order_id": "o-1",
            }
            assert (await client.conversion_batch([conversion])).ok == 1

    asyncio.run(run())
    assert [request.url.path for request in script.requests] == [
        "/v1/api/collect/batch",
        "/v1/api/conversion/batch",
    ]
    assert list(script.bodies()[1]) == ["conversions"]
