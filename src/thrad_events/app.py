"""The composition root: builds the store, key cache, pipeline and routes into one ASGI app."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from thrad_events.auth.keys import KeyCache
from thrad_events.config import Settings
from thrad_events.enrich.enricher import RowEnricher
from thrad_events.enrich.geo import open_geo, reload_on_sighup
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.enrich.useragent import UserAgentParser
from thrad_events.errors import Outcome
from thrad_events.http import batch, click, collect, conversion, health, openapi, reports
from thrad_events.http.common import EndpointDeps
from thrad_events.http.errors import error_response
from thrad_events.http.request_id import RequestIdMiddleware
from thrad_events.ingest.pipeline import Ingestor
from thrad_events.logs import configure_logging
from thrad_events.metrics import Metrics
from thrad_events.ratelimits import KeyRateLimiter, limiter_storage
from thrad_events.reports.query import Report
from thrad_events.reports.run import ReportRunner
from thrad_events.store import open_store
from thrad_events.store.base import Store

CLICK_SECRET_SETTING = "click_secret"  # noqa: S105 (a setting name, not a secret)


def click_secret(settings: Settings, store: Store) -> str:
    """THRAD_CLICK_SECRET, else the one generated and stored on first start."""
    return settings.click_secret or store.setting(CLICK_SECRET_SETTING, secrets.token_urlsafe(32))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # The route's Allow header (RFC 9110: a 405 names the methods the path takes).
        return error_response(
            Outcome.METHOD_NOT_ALLOWED, "method not allowed on this path", headers=exc.headers
        )
    return error_response(Outcome.NOT_FOUND, f"no such endpoint: {request.url.path}")


def build_app(settings: Settings) -> HotPaths:
    metrics = Metrics(settings.metrics_dir)
    store = open_store(
        settings.database_url,
        write_batch_max_rows=settings.write_batch_max_rows,
        write_queue_max_rows=settings.write_queue_max_rows,
        on_batch=metrics.observe_batch,
        write_timeout_s=settings.write_timeout_s,
    )
    store.migrate()
    # GeoIP file missing or broken: logged once, bundled country data answers (fail open).
    enricher = RowEnricher(open_geo(settings.geoip_db), UserAgentParser())
    ingestor = Ingestor(
        store,
        proxies=TrustedProxies(settings.trusted_proxies),
        click_secret=click_secret(settings, store),
        click_ttl_s=settings.click_ttl_s,
        enricher=enricher,
    )
    deps = EndpointDeps(
        keys=KeyCache(store, ttl_s=settings.key_cache_ttl_s),
        limiter=KeyRateLimiter(
            limiter_storage(settings.redis_url), default_per_s=settings.rate_limit_per_s
        ),
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    report_access = reports.ReportAccess(deps.keys, deps.limiter, settings.admin_token)
    report_runner = ReportRunner(store, timeout_s=settings.report_timeout_s)
    collect_ep = collect.collect_endpoint(ingestor, deps)
    conversion_ep = conversion.conversion_endpoint(ingestor, deps)
    collect_batch_ep = batch.collect_batch_endpoint(ingestor, deps)
    conversion_batch_ep = batch.conversion_batch_endpoint(ingestor, deps)
    routes = [
        Route("/v1/api/collect", collect_ep, methods=["POST"]),
        Route("/v1/api/collect/batch", collect_batch_ep, methods=["POST"]),
        Route("/api/collect/batch", collect_batch_ep, methods=["POST"]),
        Route("/v1/api/conversion/batch", conversion_batch_ep, methods=["POST"]),
        Route("/api/conversion/batch", conversion_batch_ep, methods=["POST"]),
        Route("/api/collect", collect_ep, methods=["POST"]),
        Route("/v1/api/conversion", conversion_ep, methods=["POST"]),
        Route("/api/conversion", conversion_ep, methods=["POST"]),
        Route("/v1/click", click.click_endpoint(ingestor, metrics), methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz_endpoint(store, deps.limiter), methods=["GET"]),
        Route("/metrics", health.metrics_endpoint(metrics, store), methods=["GET"]),
        *(
            Route(
                f"/v1/api/reports/{report}",
                reports.report_endpoint(report, report_runner, report_access, metrics),
                methods=["GET"],
            )
            for report in Report
        ),
        Route("/openapi.json", openapi.openapi_endpoint(), methods=["GET"]),
        Route("/docs", openapi.docs, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        reload_on_sighup(enricher.geo)
        try:
            yield
        finally:
            # Runs after uvicorn stopped accepting and finished in-flight requests: the writer
            # commits whatever is still queued before the process exits. Report threads end
            # first, as they read through the store.
            await report_runner.close()
            await store.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: _http_error},
    )
    # Starlette would redirect a path with a trailing slash, building the Location from the
    # client's Host header: a method-keeping 307 that hands an event to whatever host the
    # client named. Each endpoint has one path; any other is a JSON 404.
    app.router.redirect_slashes = False
    hot = {
        path: endpoint
        for path, endpoint in (
            ("/v1/api/collect", collect_ep),
            ("/api/collect", collect_ep),
            ("/v1/api/conversion", conversion_ep),
            ("/api/conversion", conversion_ep),
            ("/v1/api/collect/batch", collect_batch_ep),
            ("/api/collect/batch", collect_batch_ep),
            ("/v1/api/conversion/batch", conversion_batch_ep),
            ("/api/conversion/batch", conversion_batch_ep),
        )
    }
    return HotPaths(hot, app, metrics)


class HotPaths:
    """POSTs to the ingest endpoints go straight to their bare ASGI apps; the rest to Starlette.

    The ingest endpoints do their own request id, errors and metrics, so skipping Starlette's
    middleware and router there changes no behaviour and saves its cost on every event.
    """

    def __init__(self, hot: dict[str, ASGIApp], app: Starlette, metrics: Metrics) -> None:
        self.hot = hot
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.hot.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app() -> HotPaths:
    """Factory for uvicorn workers: settings come from the environment the CLI prepared."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level, access_log=settings.access_log)
    return build_app(settings)
