"""Prometheus metrics: every request outcome counted, latencies and write batches measured."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess


class Metrics:
    """The service's metrics. With `multiprocess_dir` (several workers) every worker writes its
    values there and a scrape of any worker sums them all."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry()
        if multiprocess_dir:
            self.exposition = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.exposition, path=multiprocess_dir
            )
        else:
            self.exposition = self.registry
        self.requests = Counter(
            "thrad_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "thrad_outcomes",
            "Request outcomes by route (stored, duplicate, invalid_json, unauthorized, ...)",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "thrad_request_duration_seconds",
            "Request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "thrad_write_batch_rows",
            "Rows per group commit",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "thrad_write_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "thrad_write_queue_depth",
            "Rows waiting for the writer",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        self.rate_limit_storage_failures = Counter(
            "thrad_rate_limit_storage_failures",
            "Rate-limit checks the shared counters (Redis) did not answer: each was admitted",
            registry=self.registry,
        )
        self.enrichment_failures = Counter(
            "thrad_enrichment_failures",
            "Rows stored without a helper's enrichment columns because it failed, by helper",
            ["helper"],
            registry=self.registry,
        )

    def count_enrichment_failure(self, helper: str) -> None:
        self.enrichment_failures.labels(helper).inc()

    def observe_batch(self, rows: int, seconds: float) -> None:
        """Called from the writer thread after each commit."""
        self.batch_rows.observe(rows)
        self.commit_seconds.observe(seconds)
