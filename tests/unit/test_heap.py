"""settle_heap: what a serving worker does to its collector once it is built."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from thrad_events.heap import GEN0_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_freezes_what_survived_and_collects_the_young_less_often() -> None:
    _, gen1, gen2 = gc.get_threshold()
    survivor = [object()]
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GEN0_THRESHOLD, gen1, gen2)
    # What existed when the heap settled is out of the collector's generations.
    assert not any(survivor is tracked for tracked in gc.get_objects())


@pytest.mark.usefixtures("restored_collector")
def test_a_cycle_made_after_is_still_collected_by_the_collector_itself() -> None:
    settle_heap()

    class Node:
        other: object = None

    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    # No gc.collect(): allocations past the young generation's threshold must start one.
    kept = [[] for _ in range(3 * GEN0_THRESHOLD)]
    assert gone() is None
    assert len(kept) == 3 * GEN0_THRESHOLD
