"""The composition root: builds the store, key cache, pipeline and the route table into one ASGI
app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

from thrad_events.auth.keys import KeyCache
from thrad_events.auth.tags import TagRegistry
from thrad_events.config import Settings
from thrad_events.debugstream.bus import open_bus
from thrad_events.debugstream.hub import DebugHub
from thrad_events.enrich.enricher import RowEnricher
from thrad_events.enrich.geo import open_geo, reload_on_sighup
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.enrich.useragent import UserAgentParser
from thrad_events.heap import settle_heap
from thrad_events.http import (
    batch,
    click,
    collect,
    conversion,
    debugger,
    delivery,
    docs_page,
    export,
    health,
    openapi,
    reports,
    testclicks,
)
from thrad_events.http.admin import AdminAccess, admin_routes
from thrad_events.http.admission import Admission
from thrad_events.http.endpoint import Handle, endpoint
from thrad_events.http.head_refusals import HeadRefusals
from thrad_events.http.protocol import REFUSED_HEAD, STOP_STREAMS
from thrad_events.http.routing import Route, Router, get, post
from thrad_events.http.tag import Script, TagAdmission, script_handle, tag_ingest_handle
from thrad_events.ingest.checks import Checker
from thrad_events.ingest.delivery import DeliveryRecorder
from thrad_events.ingest.pipeline import Ingestor
from thrad_events.logs import RejectionLog, configure_logging
from thrad_events.metrics import Metrics
from thrad_events.ratelimits import KeyRateLimiter, limiter_storage
from thrad_events.reports.export_cursor import CursorSigner
from thrad_events.reports.export_run import ExportRunner
from thrad_events.reports.query import Report
from thrad_events.reports.run import ReportRunner
from thrad_events.store import open_store
from thrad_events.store.base import Store
from thrad_events.store.test_retention import purge_periodically

BatchHandle = Callable[[str, Ingestor, Admission, Metrics, Checker], Handle]

# The routes whose requests the delivery report counts.
INGEST_ROUTES = frozenset({"collect", "conversion", "collect_batch", "conversion_batch"})
CLICK_SECRET_SETTING = "click_secret"  # noqa: S105 (a setting name, not a secret)


def click_secret(settings: Settings, store: Store) -> str:
    """THRAD_CLICK_SECRET, else the one generated and stored on first start."""
    return settings.click_secret or store.setting(CLICK_SECRET_SETTING, secrets.token_urlsafe(32))


def build_app(settings: Settings) -> App:
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
    enricher = RowEnricher(
        open_geo(settings.geoip_db),
        UserAgentParser(),
        on_failure=metrics.count_enrichment_failure,
    )
    proxies = TrustedProxies(settings.trusted_proxies)
    # What becomes of each partner's requests: refusals kept, outcomes counted.
    recorder = DeliveryRecorder(
        store,
        retention_days=settings.rejections_retention_days,
        counted_routes=INGEST_ROUTES,
    )
    # Signs click links and export cursors alike.
    secret = click_secret(settings, store)
    ingestor = Ingestor(
        store,
        delivery=recorder,
        proxies=proxies,
        click_secret=secret,
        click_ttl_s=settings.click_ttl_s,
        enricher=enricher,
    )
    checker = Checker(ingestor, store)
    keys = KeyCache(store, ttl_s=settings.key_cache_ttl_s)
    limiter = KeyRateLimiter(
        limiter_storage(settings.redis_url),
        default_per_s=settings.rate_limit_per_s,
        on_storage_failure=metrics.rate_limit_storage_failures.inc,
    )
    admission = Admission(keys, limiter, settings.max_body_bytes, settings.body_timeout_s)
    report_access = reports.ReportAccess(keys, limiter, settings.admin_token, store)
    report_runner = ReportRunner(store, timeout_s=settings.report_timeout_s)
    export_runner = ExportRunner(store, wait_timeout_s=settings.report_timeout_s)
    export_cursors = CursorSigner(secret)

    rejections = RejectionLog()
    tag_admission = TagAdmission(
        TagRegistry(store, ttl_s=settings.key_cache_ttl_s),
        limiter,
        proxies,
        max_body_bytes=min(settings.tag_max_body_bytes, settings.max_body_bytes),
        tag_per_s=settings.tag_rate_limit_per_s,
        ip_per_s=settings.tag_ip_rate_limit_per_s,
        body_timeout_s=settings.body_timeout_s,
    )
    # The event debugger's streams, fed from every worker and node (debugstream/).
    debug = DebugHub(open_bus(settings.database_url), heartbeat_s=settings.debug_heartbeat_s)

    # Each counted endpoint's route name: what a refused request head on its path is kept as.
    route_names: dict[ASGIApp, str] = {}

    def counted(route: str, handle: Handle, *, counts_own_outcomes: bool = False) -> ASGIApp:
        app = endpoint(
            route,
            handle,
            metrics,
            counts_own_outcomes=counts_own_outcomes,
            rejections=rejections,
            delivery=recorder,
            debug=debug,
        )
        route_names[app] = route
        return app

    def batch_route(route: str, make: BatchHandle) -> ASGIApp:
        # Each item's outcome is counted; the request's only when it is refused whole.
        handle = make(route, ingestor, admission, metrics, checker)
        return counted(route, handle, counts_own_outcomes=True)

    def uncounted(route: str, handle: Handle) -> ASGIApp:
        # Load balancers' probes and Prometheus' scrapes would drown the requests that
        # partners send in thrad_requests; they keep the request id and error shape.
        return endpoint(route, handle, None)

    routes = [
        post("/v1/api/collect", "/api/collect",
             app=counted("collect", collect.collect_handle(ingestor, admission, checker))),
        post("/v1/api/conversion", "/api/conversion",
             app=counted("conversion", conversion.conversion_handle(ingestor, admission, checker))),
        post("/v1/api/collect/batch", "/api/collect/batch",
             app=batch_route("collect_batch", batch.collect_batch_handle)),
        post("/v1/api/conversion/batch", "/api/conversion/batch",
             app=batch_route("conversion_batch", batch.conversion_batch_handle)),
        get("/v1/click", app=counted("click", click.click_handle(ingestor))),
        post("/v1/api/test/clicks", app=counted(
            "test_clicks", testclicks.create_test_click_handle(ingestor, admission))),
        *(
            get(f"/v1/api/reports/{report}", app=counted(
                f"reports_{report}", reports.report_handle(report, report_runner, report_access)
            ))
            for report in Report
        ),
        *(
            get(f"/v1/api/export/{table}", app=counted(
                f"export_{table}",
                export.export_handle(
                    table, export_runner, report_access, export_cursors,
                    settle_s=settings.export_settle_s,
                ),
            ))
            for table in export.EXPORT_TABLES
        ),
        get("/v1/tag.js", app=counted("tag_js", script_handle(Script.load()))),
        Route(("/v1/tag/collect",), ("POST", "OPTIONS"), counted("tag_collect",
            tag_ingest_handle(tag_admission, ingestor.collect, collect.ANSWERS))),
        Route(("/v1/tag/conversion",), ("POST", "OPTIONS"), counted("tag_conversion",
            tag_ingest_handle(tag_admission, ingestor.conversion, conversion.ANSWERS))),
        get("/v1/api/reports/delivery", app=counted("reports_delivery",
            delivery.delivery_handle(store, report_runner, report_access))),
        get("/v1/api/rejections", app=counted("rejections",
            delivery.rejections_handle(store, report_runner, report_access))),
        get("/healthz", app=uncounted("healthz", health.healthz)),
        get("/readyz", app=uncounted("readyz", health.readyz_handle(store, limiter))),
        get("/metrics", app=uncounted("metrics", health.metrics_handle(metrics, store))),
        get("/openapi.json", app=uncounted("openapi", openapi.openapi_handle())),
        get("/docs", app=uncounted("docs", docs_page.docs)),
        *(
            get(path, app=uncounted("docs", handle))
            for path, handle in docs_page.asset_handles().items()
        ),
        # A stream lasts minutes: its latency would swamp the histogram of requests.
        get("/v1/api/debug/stream",
            app=uncounted("debug_stream", debugger.stream_handle(debug, report_access))),
        get("/debugger", app=uncounted("debugger", debugger.page_handle())),
        *admin_routes(
            AdminAccess(keys, settings.admin_token, store, settings.body_timeout_s), counted
        ),
    ]  # fmt: skip

    head_refusals = HeadRefusals(
        keys,
        recorder,
        rejections,
        {
            path: route_names[route.app]
            for route in routes
            if route.app in route_names
            for path in route.paths
            if "{" not in path  # templated paths are the admin API's: no partner key
        },
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await store.start()
        recorder.start()
        reload_on_sighup(enricher.geo)
        purge = asyncio.create_task(purge_periodically(store, settings.test_retention_days))
        await debug.start()
        try:
            # The HTTP protocol ends open streams with the first when the server stops, and
            # tells the second of each request head it refused that carried a key.
            yield {STOP_STREAMS: debug.shut_down, REFUSED_HEAD: head_refusals}
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
            await debug.close()
            # Refusals still in memory go to the writer before it stops.
            await recorder.stop()
            # Runs after uvicorn stopped accepting and finished in-flight requests: the writer
            # commits whatever is still queued before the process exits. Report threads end
            # first, as they read through the store.
            await report_runner.close()
            await export_runner.close()
            await store.close()

    # Starlette runs only the lifespan: every request goes through the route table.
    return App(routes, Starlette(lifespan=lifespan), metrics)


class App(Router):
    """The service: its routes, and the metrics they count into (read by in-process callers
    such as bench/hotpath.py)."""

    def __init__(self, routes: list[Route], fallback: ASGIApp, metrics: Metrics) -> None:
        super().__init__(routes, fallback)
        self.metrics = metrics


def create_app() -> App:
    """Factory for uvicorn workers: settings come from the environment the CLI prepared."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level, access_log=settings.access_log)
    app = build_app(settings)
    settle_heap()
    return app
