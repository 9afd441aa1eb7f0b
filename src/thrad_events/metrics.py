"""Prometheus metrics: every request outcome counted, latencies and write batches measured.

Requests are counted per route in plain ints (`RouteCounts`) and folded into the Prometheus
series when a registry is collected (a scrape, a test's read), when the worker has no counted
request left in flight, and else at most FOLD_EVERY_S after the first unfolded count; so under
load a request pays a few dict adds instead of a locked write per series (with several workers
each write is to a file they share: BENCHMARKS.md has the cost), and a worker that went quiet
has its counts in the shared files as soon as its last answer is sent, as before. The series
and their sums across workers are the same.

"No request left in flight" is checked once per turn of the event loop, not after each request:
requests that need no wait (a refusal) run to their end one after the other within one turn,
and each would otherwise fold alone.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

FOLD_EVERY_S = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's metrics. With `multiprocess_dir` (several workers) every worker writes its
    values there and a scrape of any worker sums them all."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry()
        # The routes counted since the last fold, and the loop whose fold timer is pending.
        self.pending: list[RouteCounts] = []
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        # The loop on which a check for no request in flight is scheduled, if one is.
        self._idle_loop: asyncio.AbstractEventLoop | None = None
        # Registered first, so a collect folds what is pending before the series are read.
        self.registry.register(_FoldFirst(self))
        if multiprocess_dir:
            self.exposition = CollectorRegistry()
            self.exposition.register(_FoldFirst(self))
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
            buckets=LATENCY_BUCKETS,
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

    def route_counts(self, route: str) -> RouteCounts:
        """Where the requests of `route` are counted until the next fold."""
        return RouteCounts(self, route)

    def fold(self) -> None:
        """Add what every route counted since the last fold to its Prometheus series."""
        pending, self.pending = self.pending, []
        for counts in pending:
            counts.fold()

    def counting(self, counts: RouteCounts) -> None:
        """`counts` has its first count since the last fold: fold it within FOLD_EVERY_S (one
        timer at a time), so that another worker's scrape sees it while this one is busy."""
        self.pending.append(counts)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # counted outside a loop: folded at the next collect
        if self._timer_loop is not loop:
            self._timer_loop = loop
            loop.call_later(FOLD_EVERY_S, self._fold_on_timer)

    def _fold_on_timer(self) -> None:
        self._timer_loop = None
        self.fold()

    def went_idle(self) -> None:
        """No request is in flight: fold at the end of this turn of the loop if none has begun
        by then (one check a turn however many requests ended in it)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.fold()
            return
        if self._idle_loop is not loop:  # (a check scheduled on a loop since closed never ran)
            self._idle_loop = loop
            loop.call_soon(self._fold_if_idle)

    def _fold_if_idle(self) -> None:
        self._idle_loop = None
        if not self.in_flight and self.pending:
            self.fold()


class RouteCounts:
    """One route's requests since the last fold: outcomes, statuses and latencies in plain ints.

    Counted and folded on the event loop's thread (requests, its fold timer and scrapes all run
    there), so no lock.
    """

    __slots__ = (
        "_latency",
        "_metrics",
        "_outcome_series",
        "_route",
        "_status_series",
        "buckets",
        "latency_sum",
        "outcomes",
        "pending",
        "statuses",
    )

    def __init__(self, metrics: Metrics, route: str) -> None:
        self._metrics = metrics
        self._route = route
        self._latency = metrics.latency.labels(route)  # its series shown from the start, at 0
        self._outcome_series: dict[str, Any] = {}
        self._status_series: dict[int, Any] = {}
        self.outcomes: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        # As the Histogram keeps them: per bucket, not cumulative, the last one +Inf.
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.pending = False

    def begin(self) -> None:
        """A request of this route has begun (its `end` comes however it ends)."""
        self._metrics.in_flight += 1

    def end(self) -> None:
        metrics = self._metrics
        metrics.in_flight -= 1
        if not metrics.in_flight and metrics.pending:
            metrics.went_idle()

    def count(self, outcome: str | None, status: int, seconds: float) -> None:
        """One answered request: its outcome (None when the endpoint counted it itself), its
        status and how long it took."""
        if outcome is not None:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        if not self.pending:
            self.pending = True
            self._metrics.counting(self)

    def fold(self) -> None:
        self.pending = False
        metrics, route = self._metrics, self._route
        for outcome, n in self.outcomes.items():
            series = self._outcome_series.get(outcome)
            if series is None:
                series = self._outcome_series[outcome] = metrics.outcomes.labels(route, outcome)
            series.inc(n)
        self.outcomes.clear()
        for status, n in self.statuses.items():
            series = self._status_series.get(status)
            if series is None:
                series = self._status_series[status] = metrics.requests.labels(route, str(status))
            series.inc(n)
        self.statuses.clear()
        # What Histogram.observe writes, n observations at once (prometheus-client is pinned;
        # tests/unit/test_metrics.py checks the result against observe's).
        self._latency._sum.inc(self.latency_sum)
        self.latency_sum = 0.0
        buckets = self.buckets
        for i, bucket in enumerate(self._latency._buckets):
            if buckets[i]:
                bucket.inc(buckets[i])
                buckets[i] = 0


class _FoldFirst(Collector):
    """Collects nothing: folds the pending counts before the registry's series are read."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        self._metrics.fold()
        return ()
