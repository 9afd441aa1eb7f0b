"""client/sync.py: what Thrad sends, when it retries, what it raises. No network, no real sleeps."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.unit.client.conftest import FakeTime, Script, error_response
from thrad_events.client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ClickNotFoundError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    Thrad,
    ThradError,
    ValidationError,
)

MakeClient = Callable[..., Thrad]
OK = httpx.Response(200, json={"status": "ok"})
CLICK = "11111111-1111-4111-8111-111111111111"


def _convert(client: Thrad, value: Any = Decimal("49.99"), **fields: Any) -> str:
    return client.conversion(CLICK, "2026-02-19T18:00:00Z", value, "USD", **fields)


# -- what goes on the wire ---------------------------------------------------------------------


def test_collect_posts_the_seed_fields_with_the_bearer_key_and_returns_none_on_204(
    make_client: MakeClient,
) -> None:
    script = Script(httpx.Response(204))
    client = make_client(script)
    answer = client.collect(
        "page_view", tag_id="adv_001", event_id="pv-1", params={"step": "shipping"}, referrer=None
    )
    assert answer is None
    [request] = script.requests
    assert request.method == "POST"
    assert str(request.url) == "https://events.example/v1/api/collect"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.headers["content-type"] == "application/json"
    assert "idempotency-key" not in request.headers
    assert script.bodies() == [
        {
            "event_name": "page_view",
            "tag_id": "adv_001",
            "event_id": "pv-1",
            "params": {"step": "shipping"},
        }
    ]


def test_collect_sends_a_datetime_timestamp_as_unix_seconds(make_client: MakeClient) -> None:
    script = Script(httpx.Response(204))
    make_client(script).collect("page_view", timestamp=datetime(2026, 2, 23, 20, 40))
    assert script.bodies()[0]["timestamp"] == 1771879200


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("49.990"), b'"conversion_value":49.990,'),
        (Decimal("49.99"), b'"conversion_value":49.99,'),
        (Decimal("1E+2"), b'"conversion_value":1E+2,'),
        (Decimal("-0.10"), b'"conversion_value":-0.10,'),
        (49.99, b'"conversion_value":49.99,'),
        (0.1 + 0.2, b'"conversion_value":0.30000000000000004,'),
        (10, b'"conversion_value":10,'),
    ],
)
def test_money_goes_on_the_wire_with_its_exact_digits(
    make_client: MakeClient, value: Any, wire: bytes
) -> None:
    """Contract: money is exact; Decimal("49.990") is the JSON number 49.990, a float its repr."""
    script = Script(OK)
    _convert(make_client(script), value)
    assert wire in script.requests[0].content


def test_conversion_body_has_the_four_required_fields_and_the_extras(
    make_client: MakeClient,
) -> None:
    script = Script(OK)
    client = make_client(script)
    assert _convert(client, order_id="order-123", customer_tier="gold") == "ok"
    [request] = script.requests
    assert str(request.url) == "https://events.example/v1/api/conversion"
    assert script.bodies()[0] == {
        "click_id": CLICK,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "USD",
        "order_id": "order-123",
        "customer_tier": "gold",
    }


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 2, 19, 18, 0), "2026-02-19T18:00:00Z"),
        (datetime(2026, 2, 19, 19, 0, tzinfo=timezone(timedelta(hours=1))), "2026-02-19T18:00:00Z"),
        (datetime(2026, 2, 19, 18, 0, 0, 250000, tzinfo=UTC), "2026-02-19T18:00:00.250000Z"),
        ("2026-02-19T18:00:00+01:00", "2026-02-19T18:00:00+01:00"),
    ],
)
def test_conversion_time_naive_is_utc_aware_is_converted_text_is_kept(
    make_client: MakeClient, moment: datetime | str, text: str
) -> None:
    script = Script(OK)
    make_client(script).conversion(CLICK, moment, 1, "USD")
    assert script.bodies()[0]["conversion_time"] == text


def test_conversion_answers_duplicate_when_the_server_says_so(make_client: MakeClient) -> None:
    client = make_client(Script(httpx.Response(200, json={"status": "duplicate"})))
    assert _convert(client) == "duplicate"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (True, TypeError),
        ("49.99", TypeError),
        (Decimal("NaN"), ValueError),
        (float("inf"), ValueError),
    ],
)
def test_conversion_value_must_be_a_finite_number(
    make_client: MakeClient, value: Any, error: type[Exception]
) -> None:
    script = Script(OK)
    with pytest.raises(error):
        _convert(make_client(script), value)
    assert script.attempts == 0


def test_an_answer_that_is_not_the_contracts_is_an_api_error(make_client: MakeClient) -> None:
    client = make_client(Script(httpx.Response(200, text="<html>hello</html>")))
    with pytest.raises(APIError, match="unexpected answer"):
        _convert(client)


# -- retries -------------------------------------------------------------------------------------


def test_seed_retry_503_then_ok_reuses_the_idempotency_key(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    """Seed: retry on 5xx, and reuse the same Idempotency-Key for retries of the same event."""
    script = Script(error_response(503, "unavailable"), error_response(502, "bad_gateway"), OK)
    assert _convert(make_client(script)) == "ok"
    assert script.attempts == 3
    keys = script.header("idempotency-key")
    assert keys[0] is not None
    assert keys == [keys[0]] * 3
    assert len({request.content for request in script.requests}) == 1
    assert len(fake_time.sleeps) == 2


def test_seed_retry_network_errors_then_ok(make_client: MakeClient) -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadTimeout("slow"),
        OK,
    )
    assert _convert(make_client(script)) == "ok"
    assert script.attempts == 4
    assert len(set(script.header("idempotency-key"))) == 1


def test_seed_retry_429_waits_what_retry_after_says(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    limited = error_response(429, "rate_limited", headers={"Retry-After": "2"})
    script = Script(limited, OK)
    assert _convert(make_client(script)) == "ok"
    assert fake_time.sleeps == [2.0]


def test_retry_after_is_honoured_on_503_too(make_client: MakeClient, fake_time: FakeTime) -> None:
    script = Script(error_response(503, "unavailable", headers={"Retry-After": "1"}), OK)
    _convert(make_client(script))
    assert fake_time.sleeps == [1.0]


def test_a_retry_after_that_is_not_seconds_falls_back_to_the_backoff(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    when = "Wed, 21 Oct 2015 07:28:00 GMT"
    script = Script(error_response(429, "rate_limited", headers={"Retry-After": when}), OK)
    _convert(make_client(script, jitter=lambda: 1.0))
    assert fake_time.sleeps == [0.5]


def test_exponential_backoff_with_full_jitter_stays_within_its_bounds(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    """Seed: exponential backoff with jitter. Wait n is in [0, min(max, initial * 2**(n-1))]."""
    draws = iter([0.999, 0.0, 0.5, 0.999, 0.25])
    script = Script(error_response(503, "unavailable"))
    client = make_client(
        script,
        max_attempts=6,
        deadline_s=None,
        initial_backoff_s=0.1,
        max_backoff_s=0.5,
        jitter=lambda: next(draws),
    )
    with pytest.raises(ServerError):
        _convert(client)
    assert script.attempts == 6
    caps = [0.1, 0.2, 0.4, 0.5, 0.5]
    assert all(0 <= wait <= cap for wait, cap in zip(fake_time.sleeps, caps, strict=True))
    assert fake_time.sleeps == pytest.approx([0.0999, 0.0, 0.2, 0.4995, 0.125])


def test_gives_up_after_max_attempts_with_the_last_error(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    script = Script(error_response(500, "internal"), error_response(503, "unavailable"))
    with pytest.raises(ServerError) as raised:
        _convert(make_client(script, max_attempts=3))
    assert script.attempts == 3
    assert raised.value.status == 503
    assert raised.value.code == "unavailable"
    assert len(fake_time.sleeps) == 2


def test_network_failures_exhausted_raise_a_connection_error_with_the_cause(
    make_client: MakeClient,
) -> None:
    script = Script(httpx.ConnectError("connection refused"))
    with pytest.raises(APIConnectionError, match="ConnectError") as raised:
        make_client(script, max_attempts=2).collect("page_view")
    assert script.attempts == 2
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert raised.value.status is None


def test_the_total_deadline_stops_retrying_before_it_passes(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    def slow_failure(request: httpx.Request) -> httpx.Response:
        fake_time.now += 2.0  # each attempt takes 2 s of the 5 s budget
        return error_response(503, "unavailable")

    script = Script(slow_failure)
    with pytest.raises(ServerError):
        _convert(make_client(script, max_attempts=10, deadline_s=5.0, jitter=lambda: 1.0))
    # t=2 fail, wait 0.5; t=4.5 fail, a wait of 1 would end at 5.5: stop.
    assert script.attempts == 2
    assert fake_time.now - 1000.0 < 5.0


def test_a_retry_after_beyond_the_deadline_fails_at_once(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    script = Script(error_response(429, "rate_limited", headers={"Retry-After": "60"}), OK)
    with pytest.raises(RateLimitError) as raised:
        _convert(make_client(script, deadline_s=30.0))
    assert raised.value.retry_after == 60.0
    assert script.attempts == 1
    assert fake_time.sleeps == []


def test_each_attempt_timeout_is_shortened_to_the_time_left(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    timeouts: list[Any] = []

    def failure(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        fake_time.now += 3.0
        return error_response(503, "unavailable")

    with pytest.raises(ServerError):
        _convert(make_client(Script(failure), timeout=10.0, deadline_s=8.0, jitter=lambda: 0.0))
    assert timeouts == [8.0, 5.0, 2.0]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "missing_field", InvalidRequestError),
        (400, "invalid_json", InvalidRequestError),
        (401, "unauthorized", AuthenticationError),
        (404, "click_not_found", ClickNotFoundError),
        (413, "payload_too_large", PayloadTooLargeError),
        (422, "validation_error", ValidationError),
    ],
)
def test_seed_errors_400_401_404_413_422_are_never_retried(
    make_client: MakeClient,
    fake_time: FakeTime,
    status: int,
    code: str,
    error: type[ThradError],
) -> None:
    script = Script(error_response(status, code, headers={"X-Request-ID": "req-1"}), OK)
    with pytest.raises(error) as raised:
        _convert(make_client(script))
    assert script.attempts == 1
    assert fake_time.sleeps == []
    assert (raised.value.status, raised.value.code, raised.value.request_id) == (
        status,
        code,
        "req-1",
    )


def test_collect_is_retried_on_the_same_conditions(make_client: MakeClient) -> None:
    """Seed: retry collect too; an event_id makes it exact (the server dedupes tag_id+event_id)."""
    script = Script(
        error_response(429, "rate_limited", headers={"Retry-After": "0"}),
        httpx.ReadError("reset"),
        httpx.Response(204),
    )
    make_client(script).collect("page_view", event_id="pv-1", tag_id="t")
    assert script.attempts == 3
    assert len({request.content for request in script.requests}) == 1


def test_collect_422_is_not_retried(make_client: MakeClient) -> None:
    script = Script(error_response(422, "validation_error"), httpx.Response(204))
    with pytest.raises(ValidationError):
        make_client(script).collect("page_view", timestamp="yesterday")
    assert script.attempts == 1


# -- the Idempotency-Key -------------------------------------------------------------------------


def test_the_callers_idempotency_key_is_sent_on_every_attempt(make_client: MakeClient) -> None:
    script = Script(httpx.ReadError("reset"), OK)
    _convert(make_client(script), idempotency_key="order-123", order_id="order-123")
    assert script.header("idempotency-key") == ["order-123", "order-123"]


def test_without_a_key_the_event_id_is_the_key_as_the_server_would_use_it(
    make_client: MakeClient,
) -> None:
    """The header takes precedence over event_id on the server, so it must not differ from it."""
    script = Script(OK)
    _convert(make_client(script), event_id="evt-9", order_id="order-1")
    assert script.header("idempotency-key") == ["evt-9"]


def test_without_a_key_one_is_derived_from_the_order_and_is_the_same_next_time(
    make_client: MakeClient,
) -> None:
    script = Script(OK)
    client = make_client(script)
    _convert(client, order_id="order-123")
    _convert(client, order_id="order-123", event_type="purchase_completed")
    _convert(client, order_id="order-124")
    first, again, other = script.header("idempotency-key")
    assert first is not None
    assert first.startswith("order-")
    assert first == again
    assert other != first


def test_without_anything_a_random_key_is_made_once_per_call(make_client: MakeClient) -> None:
    script = Script(error_response(503, "unavailable"), OK)
    client = make_client(script)
    _convert(client)
    _convert(client)
    first, retry, second = script.header("idempotency-key")
    assert first == retry
    assert second != first
    assert len(first or "") == 36


# -- errors ---------------------------------------------------------------------------------------


def test_a_422_carries_the_fields_the_server_named(make_client: MakeClient) -> None:
    details = [{"field": "currency", "message": "not an ISO 4217 code: 'XYZ'"}]
    script = Script(error_response(422, "validation_error", "currency: bad", details=details))
    with pytest.raises(ValidationError) as raised:
        make_client(script).conversion(CLICK, "2026-02-19T18:00:00Z", 1, "XYZ")
    error = raised.value
    assert error.fields == ["currency"]
    assert error.details[0].message == "not an ISO 4217 code: 'XYZ'"
    assert error.message == "currency: bad"
    assert error.to_json()["error"]["code"] == "validation_error"


def test_an_unknown_path_is_a_not_found_error_but_not_a_click_error(
    make_client: MakeClient,
) -> None:
    script = Script(error_response(404, "not_found"))
    with pytest.raises(NotFoundError) as raised:
        make_client(script).collect("page_view")
    assert not isinstance(raised.value, ClickNotFoundError)


def test_a_5xx_without_a_json_body_is_a_server_error_quoting_the_body(
    make_client: MakeClient,
) -> None:
    script = Script(httpx.Response(502, text="Bad Gateway from the balancer"))
    with pytest.raises(ServerError, match="Bad Gateway from the balancer") as raised:
        make_client(script, max_attempts=1).collect("page_view")
    assert raised.value.code is None
    assert raised.value.status == 502


def test_an_unexpected_status_is_an_api_error_and_not_retried(make_client: MakeClient) -> None:
    script = Script(error_response(405, "method_not_allowed"))
    with pytest.raises(APIError):
        make_client(script).collect("page_view")
    assert script.attempts == 1


def test_a_rate_limit_error_carries_retry_after(make_client: MakeClient) -> None:
    script = Script(error_response(429, "rate_limited", headers={"Retry-After": "1"}))
    with pytest.raises(RateLimitError) as raised:
        make_client(script, max_attempts=1).collect("page_view")
    assert raised.value.retry_after == 1.0


# -- batches -------------------------------------------------------------------------------------


def _batch_answer(*statuses: str, error: dict[str, Any] | None = None) -> httpx.Response:
    results: list[dict[str, Any]] = []
    for index, status in enumerate(statuses):
        result: dict[str, Any] = {"index": index, "status": status}
        if status == "error":
            result["error"] = error or {"code": "validation_error", "message": "bad", "details": []}
        results.append(result)
    totals = {name: statuses.count(name) for name in ("ok", "duplicate", "error")}
    return httpx.Response(200, json={"results": results, "totals": totals})


def test_collect_batch_posts_the_events_envelope_and_reads_each_result(
    make_client: MakeClient,
) -> None:
    error = {
        "code": "missing_field",
        "message": "event_name: required",
        "details": [{"field": "event_name", "message": "required"}],
    }
    script = Script(_batch_answer("ok", "error", "duplicate", error=error))
    result = make_client(script).collect_batch(
        [
            {"event_name": "a", "event_id": "1"},
            {"event_id": "2"},
            {"event_name": "a", "event_id": "1"},
        ]
    )
    [request] = script.requests
    assert str(request.url) == "https://events.example/v1/api/collect/batch"
    assert script.bodies()[0] == {
        "events": [
            {"event_name": "a", "event_id": "1"},
            {"event_id": "2"},
            {"event_name": "a", "event_id": "1"},
        ]
    }
    assert [r.status for r in result.results] == ["ok", "error", "duplicate"]
    assert (result.ok, result.duplicate, result.error) == (1, 1, 1)
    [failed] = result.errors
    assert failed.index == 1
    assert isinstance(failed.error, InvalidRequestError)
    assert failed.error.fields == ["event_name"]


def test_conversion_batch_posts_the_conversions_envelope_without_a_shared_key(
    make_client: MakeClient,
) -> None:
    """One Idempotency-Key would make every item after the first a duplicate: none is sent."""
    script = Script(httpx.ReadError("reset"), _batch_answer("ok", "ok", "ok"))
    conversion = {
        "click_id": CLICK,
        "conversion_time": datetime(2026, 2, 19, 18, 0),
        "conversion_value": Decimal("49.990"),
        "currency": "USD",
    }
    result = make_client(script).conversion_batch(
        [{**conversion, "order_id": "o-1"}, {**conversion, "event_id": "e-2"}, conversion]
    )
    assert result.ok == 3
    assert script.header("idempotency-key") == [None, None]
    first, retry = script.requests
    assert first.content == retry.content
    assert str(first.url) == "https://events.example/v1/api/conversion/batch"
    assert b'"conversion_value":49.990' in first.content
    items = json.loads(first.content)["conversions"]
    assert items[0]["conversion_time"] == "2026-02-19T18:00:00Z"
    assert "event_id" not in items[0]
    assert items[1]["event_id"] == "e-2"
    assert len(items[2]["event_id"]) == 36  # minted once, so the retry is deduplicated


def test_a_batch_over_500_items_is_refused_before_sending(make_client: MakeClient) -> None:
    script = Script(_batch_answer("ok"))
    with pytest.raises(ValueError, match="at most 500"):
        make_client(script).collect_batch([{"event_name": "e"}] * 501)
    with pytest.raises(ValueError, match="at least one"):
        make_client(script).conversion_batch([])
    assert script.attempts == 0


def test_a_batch_answer_that_does_not_match_the_items_is_an_api_error(
    make_client: MakeClient,
) -> None:
    script = Script(_batch_answer("ok"))
    with pytest.raises(APIError, match="unexpected batch answer"):
        make_client(script).collect_batch([{"event_name": "a"}, {"event_name": "b"}])


def test_a_batch_is_retried_like_a_single_call(make_client: MakeClient) -> None:
    script = Script(error_response(503, "unavailable"), _batch_answer("ok"))
    assert make_client(script).collect_batch([{"event_name": "a"}]).ok == 1
    assert script.attempts == 2


# -- construction --------------------------------------------------------------------------------


def test_a_callers_http_client_is_used_and_left_open() -> None:
    script = Script(httpx.Response(204))
    with httpx.Client(transport=httpx.MockTransport(script)) as http:
        with Thrad(api_key="k", base_url="https://x.example/", http_client=http) as client:
            client.collect("page_view")
        assert not http.is_closed
    assert str(script.requests[0].url) == "https://x.example/v1/api/collect"


def test_the_default_base_url_is_production() -> None:
    with Thrad(api_key="k") as client:
        assert client.base_url == "https://events.thrad.ai"


@pytest.mark.parametrize(
    "options",
    [
        {"api_key": ""},
        {"api_key": "k", "base_url": "events.thrad.ai"},
        {"api_key": "k", "max_attempts": 0},
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"api_key|base_url|max_attempts"):
        Thrad(**options)


def test_transport_and_http_client_are_exclusive() -> None:
    with httpx.Client() as http, pytest.raises(ValueError, match="either"):
        Thrad(api_key="k", http_client=http, transport=httpx.MockTransport(Script()))
