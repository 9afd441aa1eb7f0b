"""The serving process's garbage collector, set for a heap that is built once and then only
churns.

Everything allocated by the time a worker's app is built (modules, parsers, the app, its
caches) lives as long as the process, yet every full collection walks all of it again. A
request's objects are freed by reference counting the moment it ends (the ingest path makes no
reference cycles), so collecting every few hundred container allocations, Python's default,
finds nothing and promotes the objects of requests still in flight, which brings the next full
collection sooner. Once the app is built, then: one collection, the survivors frozen out of
every later collection, and the youngest generation collected after GEN0_THRESHOLD
allocations. Cycles made later (a report, a stream) are still collected, only less often.
BENCHMARKS.md has the measurement.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000


def settle_heap() -> None:
    """Collect once, freeze what survived, and collect the youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
