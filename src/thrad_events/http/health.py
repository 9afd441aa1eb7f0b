"""Liveness, readiness and metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from thrad_events.http.common import Endpoint
from thrad_events.metrics import Metrics
from thrad_events.ratelimits import KeyRateLimiter
from thrad_events.store.base import Store


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def readyz_endpoint(store: Store, limiter: KeyRateLimiter) -> Endpoint:
    """200 when every dependency answers; else 503 naming each one that did not.

    Redis is named although the limiter fails open without it: a node that cannot reach the
    shared counters admits each key up to its limit on every node, which an operator must see.
    """

    async def readyz(request: Request) -> Response:
        failed = [
            name
            for name, answers in (("storage", await store.ping()), ("redis", await limiter.ping()))
            if not answers
        ]
        if not failed:
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"status": "unavailable", "failed": failed},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    return readyz


def metrics_endpoint(metrics: Metrics, store: Store) -> Endpoint:
    async def serve_metrics(request: Request) -> Response:
        metrics.queue_depth.set(store.queue_depth())
        return Response(generate_latest(metrics.exposition), media_type=CONTENT_TYPE_LATEST)

    return serve_metrics
