"""http/endpoint.py: the one wrapper every endpoint goes through: request id, errors, metrics."""

from __future__ import annotations

import asyncio
import gc
import re

import pytest
from starlette.types import Receive, Scope

from tests.unit.http.asgi import Reply, call
from thrad_events.errors import IngestError, Outcome, RateLimited
from thrad_events.http.endpoint import Handle, endpoint
from thrad_events.http.errors import Answer
from thrad_events.http.request import ClientGone
from thrad_events.ingest import validate
from thrad_events.logs import request_id
from thrad_events.metrics import Metrics

NO_CONTENT = Answer(204)


def returning(outcome: Outcome, answer: Answer, seen: list[str | None] | None = None) -> Handle:
    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        if seen is not None:
            seen.append(request_id.get())
        return outcome, answer

    return handle


def raising(error: BaseException) -> Handle:
    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        raise error

    return handle


def serve(handle: Handle, metrics: Metrics | None = None, **headers: str) -> Reply:
    app = endpoint("collect", handle, metrics)
    reply = asyncio.run(call(app, "POST", "/v1/api/collect", headers=list(headers.items())))
    assert reply is not None
    return reply


def count(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# -- the request id -------------------------------------------------------------------------------


def test_a_sane_client_request_id_is_echoed_and_is_the_logs_id_meanwhile() -> None:
    seen: list[str | None] = []
    reply = serve(returning(Outcome.STORED, NO_CONTENT, seen), **{"X-Request-ID": "trace-42"})
    assert reply.headers["x-request-id"] == "trace-42"
    assert seen == ["trace-42"]
    assert request_id.get() is None  # reset once answered


@pytest.mark.parametrize("given", [None, "has space", "x" * 129])
def test_otherwise_a_new_id_is_minted_and_echoed_once(given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    reply = serve(returning(Outcome.STORED, NO_CONTENT), **headers)
    assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])
    assert reply.names.count("x-request-id") == 1


def test_an_error_answer_carries_the_request_id_too() -> None:
    reply = serve(raising(IngestError("boom")), **{"X-Request-ID": "trace-7"})
    assert reply.headers["x-request-id"] == "trace-7"


# -- answers --------------------------------------------------------------------------------------


def test_the_answer_is_sent_with_its_length() -> None:
    body = b'{"status":"ok"}'
    reply = serve(returning(Outcome.STORED, Answer(200, body, [(b"content-type", b"x/y")])))
    assert (reply.status, reply.body) == (200, body)
    assert reply.headers["content-length"] == str(len(body))
    assert reply.headers["content-type"] == "x/y"


def test_a_refusal_is_rendered_by_the_error_renderer() -> None:
    reply = serve(raising(RateLimited("over", retry_after_s=2, limit=5)))
    assert reply.status == 429
    assert reply.headers["retry-after"] == "2"
    assert reply.json()["error"]["code"] == "rate_limited"


def test_an_unexpected_exception_is_a_json_500_logged_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("ERROR", logger="thrad_events.http"):
        reply = serve(raising(RuntimeError("bug")))
    assert reply.status == 500
    assert reply.json()["error"]["code"] == "internal"
    assert [record.getMessage() for record in caplog.records] == ["unexpected error on collect"]


def test_a_client_gone_gets_no_answer_and_counts_nothing() -> None:
    metrics = Metrics()
    app = endpoint("collect", raising(ClientGone()), metrics)
    assert asyncio.run(call(app, "POST", "/v1/api/collect")) is None
    assert count(metrics, "thrad_requests_total", route="collect", status="204") == 0


# -- metrics --------------------------------------------------------------------------------------


def test_each_request_counts_its_outcome_status_and_latency_by_route() -> None:
    metrics = Metrics()
    serve(returning(Outcome.DUPLICATE, NO_CONTENT), metrics)
    serve(raising(RateLimited("over", retry_after_s=1, limit=1)), metrics)
    assert count(metrics, "thrad_outcomes_total", route="collect", outcome="duplicate") == 1
    assert count(metrics, "thrad_outcomes_total", route="collect", outcome="rate_limited") == 1
    assert count(metrics, "thrad_requests_total", route="collect", status="204") == 1
    assert count(metrics, "thrad_requests_total", route="collect", status="429") == 1
    assert count(metrics, "thrad_request_duration_seconds_count", route="collect") == 2


def test_an_endpoint_that_counts_its_own_outcomes_has_only_its_refusals_counted_here() -> None:
    metrics = Metrics()
    ok = endpoint("batch", returning(Outcome.STORED, NO_CONTENT), metrics, counts_own_outcomes=True)
    refused = endpoint("batch", raising(IngestError("x")), metrics, counts_own_outcomes=True)
    asyncio.run(call(ok, "POST", "/b"))
    asyncio.run(call(refused, "POST", "/b"))
    assert count(metrics, "thrad_outcomes_total", route="batch", outcome="stored") == 0
    assert count(metrics, "thrad_outcomes_total", route="batch", outcome="internal") == 1
    assert count(metrics, "thrad_requests_total", route="batch", status="204") == 1


def test_an_uncounted_route_still_gets_its_request_id_and_error_shape() -> None:
    reply = serve(raising(RuntimeError("bug")), None)
    assert reply.status == 500
    assert "x-request-id" in reply.headers


def test_a_refusal_leaves_no_reference_cycle_for_the_collector() -> None:
    """A refusal raised while the validator's own error was handled held that error, and the
    frames it passed through, in a reference cycle: garbage for the cyclic collector with every
    refused request, which made the collections grow with the refusals."""

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        validate.decode_collect(b'{"tag_id": "adv_001", "event_name": 5, "event_id": "e-1"}')
        raise AssertionError("the body above is refused")

    app = endpoint("collect", handle, None)

    async def refuse() -> None:
        reply = await call(app, "POST", "/v1/api/collect")
        assert reply is not None
        assert reply.status == 422

    async def garbage_of_refusals(times: int) -> int:
        await refuse()  # what a first request makes once (caches) is not what is counted
        gc.collect()
        gc.disable()
        try:
            for _ in range(times):
                await refuse()
            return gc.collect()
        finally:
            gc.enable()

    assert asyncio.run(garbage_of_refusals(20)) == 0
