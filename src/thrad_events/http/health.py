"""Liveness, readiness and metrics: what load balancers and Prometheus poll."""

from __future__ import annotations

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope

from thrad_events.errors import Outcome
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.metrics import Metrics
from thrad_events.ratelimits import KeyRateLimiter
from thrad_events.store.base import Store

_encoder = msgspec.json.Encoder()
_ALIVE = (Outcome.SERVED, Answer(200, b'{"status":"ok"}', [JSON_TYPE]))
_READY = (Outcome.SERVED, Answer(200, b'{"status":"ready"}', [JSON_TYPE]))


async def healthz(
    scope: Scope, receive: Receive, headers: dict[str, str]
) -> tuple[Outcome, Answer]:
    return _ALIVE


def readyz_handle(store: Store, limiter: KeyRateLimiter) -> Handle:
    """200 when every dependency answers; else 503 naming each one that did not.

    Redis is named although the limiter fails open without it: a node that cannot reach the
    shared counters admits each key up to its limit on every node, which an operator must see.
    """

    async def readyz(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        failed = [
            name
            for name, answers in (("storage", await store.ping()), ("redis", await limiter.ping()))
            if not answers
        ]
        if not failed:
            return _READY
        body = _encoder.encode({"status": "unavailable", "failed": failed})
        return Outcome.UNAVAILABLE, Answer(503, body, [JSON_TYPE, (b"retry-after", b"1")])

    return readyz


def metrics_handle(metrics: Metrics, store: Store) -> Handle:
    content_type = (b"content-type", CONTENT_TYPE_LATEST.encode())

    async def serve_metrics(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        metrics.queue_depth.set(store.queue_depth())
        return Outcome.SERVED, Answer(200, generate_latest(metrics.exposition), [content_type])

    return serve_metrics
