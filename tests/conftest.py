"""Suite-wide ordering: the tests marked `long` run first.

`pytest -n 4` hands tests out in collection order; a long test collected late keeps one worker
busy after the others have finished. Started first, it runs beside the many short ones.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: order kept
