"""metrics.py: requests counted in plain ints, folded into the same Prometheus series."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram

from thrad_events.metrics import FOLD_EVERY_S, LATENCY_BUCKETS, Metrics

LATENCIES = [0.0, 0.0004, 0.001, 0.0010001, 0.003, 0.025, 0.07, 0.5, 2.5, 2.6, 30.0]


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_folded_latencies_are_the_series_observe_would_have_written() -> None:
    metrics = Metrics()
    counts = metrics.route_counts("collect")
    reference = Histogram("ref", "", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for seconds in LATENCIES * 3:
        counts.count("stored", 204, seconds)
        reference.observe(seconds)
    expected = {
        (sample.name.rsplit("_", 1)[1], sample.labels.get("le")): sample.value
        for sample in reference.collect()[0].samples
        if sample.name in ("ref_bucket", "ref_count", "ref_sum")
    }
    folded = {
        (sample.name.rsplit("_", 1)[1], sample.labels.get("le")): sample.value
        for metric in metrics.registry.collect()
        if metric.name == "thrad_request_duration_seconds"
        for sample in metric.samples
        if sample.labels.get("route") == "collect" and not sample.name.endswith("_created")
    }
    assert folded == expected
    assert len(folded) == len(LATENCY_BUCKETS) + 3  # every bucket, +Inf, count and sum


def test_outcomes_and_statuses_are_summed_by_route_when_collected() -> None:
    metrics = Metrics()
    collect, batch = metrics.route_counts("collect"), metrics.route_counts("batch")
    for _ in range(3):
        collect.count("stored", 204, 0.002)
    collect.count("rate_limited", 429, 0.001)
    batch.count(None, 200, 0.01)  # an endpoint that counted its own outcomes
    assert sample(metrics, "thrad_outcomes_total", route="collect", outcome="stored") == 3
    assert sample(metrics, "thrad_outcomes_total", route="collect", outcome="rate_limited") == 1
    assert sample(metrics, "thrad_requests_total", route="collect", status="204") == 3
    assert sample(metrics, "thrad_requests_total", route="collect", status="429") == 1
    assert sample(metrics, "thrad_requests_total", route="batch", status="200") == 1
    assert sample(metrics, "thrad_outcomes_total", route="batch", outcome="stored") is None
    # Folded once: a second collect adds nothing, later requests add to the same series.
    assert sample(metrics, "thrad_requests_total", route="collect", status="204") == 3
    collect.count("stored", 204, 0.002)
    assert sample(metrics, "thrad_requests_total", route="collect", status="204") == 4
    assert sample(metrics, "thrad_request_duration_seconds_count", route="collect") == 5


def test_counts_are_folded_within_a_second_without_a_collect() -> None:
    """Another worker's scrape reads this one's series from the shared files: they must not
    wait for a scrape of this worker."""
    metrics = Metrics()
    counts = metrics.route_counts("collect")

    async def requests() -> None:
        counts.count("stored", 204, 0.002)
        await asyncio.sleep(FOLD_EVERY_S / 2)
        counts.count("stored", 204, 0.002)
        assert counts.statuses == {204: 2}  # not yet
        await asyncio.sleep(FOLD_EVERY_S / 2 + 0.2)
        assert counts.statuses == {}
        assert counts.outcomes == {}
        assert not any(counts.buckets)

    asyncio.run(requests())
    assert sample(metrics, "thrad_requests_total", route="collect", status="204") == 2


def test_counts_are_folded_as_soon_as_no_request_is_in_flight() -> None:
    """A worker that went quiet has its counts in the series at once (its sibling's scrape
    reads them from the shared files); one still busy folds them on its timer."""
    metrics = Metrics()
    collect, conversion = metrics.route_counts("collect"), metrics.route_counts("conversion")
    collect.begin()
    conversion.begin()
    collect.count("stored", 204, 0.002)
    collect.end()
    assert collect.statuses == {204: 1}  # the conversion is still in flight
    conversion.count("stored", 200, 0.002)
    conversion.end()
    assert collect.statuses == {}
    assert conversion.statuses == {}
    assert metrics.requests.labels("collect", "204")._value.get() == 1
    assert metrics.requests.labels("conversion", "200")._value.get() == 1


def test_requests_ending_within_one_turn_of_the_loop_fold_once_after_it() -> None:
    """Requests that need no wait (refusals) end one after the other within one turn of the
    loop: their counts are folded once, when the turn is over and nothing is in flight."""
    folds: list[int] = []

    class Counted(Metrics):
        def fold(self) -> None:
            folds.append(len(self.pending))
            super().fold()

    metrics = Counted()
    counts = metrics.route_counts("collect")

    async def requests() -> None:
        for _ in range(10):
            counts.begin()
            counts.count("validation_error", 422, 0.001)
            counts.end()
        assert folds == []  # not after each request
        await asyncio.sleep(0)
        assert folds == [1]
        counts.begin()  # a request in flight at the end of the turn: its fold waits for it
        counts.count("stored", 204, 0.001)
        await asyncio.sleep(0)
        assert folds == [1]
        counts.end()
        await asyncio.sleep(0)
        assert folds == [1, 1]

    asyncio.run(requests())
    assert sample(metrics, "thrad_requests_total", route="collect", status="422") == 10
    assert sample(metrics, "thrad_requests_total", route="collect", status="204") == 1
