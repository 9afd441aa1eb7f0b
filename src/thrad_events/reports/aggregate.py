"""The arithmetic of reports, shared by every store so that they all give the same answers.

Money is summed as decimals in a context wide enough that no sum is ever rounded
(0.1 + 0.2 is 0.3, and stays so for any number of digits). Percentiles interpolate linearly
between the closest ranks, which is PostgreSQL's percentile_cont.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal

from thrad_events.deadline import Deadline

# Addition in this context is exact: the result has as many digits as it needs.
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation],
)
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
# How many amounts are summed between two looks at the report's deadline: a look costs about
# as much as one small addition, and a report's group may hold millions of amounts.
SUM_CHECK_EVERY = 256


def exact_sum(amounts: Iterable[str | Decimal], deadline: Deadline | None = None) -> Decimal:
    """The exact total; raises ReportTimedOut soon after `deadline` passes."""
    total = Decimal(0)
    with decimal.localcontext(_EXACT):
        for count, amount in enumerate(amounts, 1):
            total += Decimal(amount)
            if deadline is not None and count % SUM_CHECK_EVERY == 0:
                deadline.check()
    return total


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The `fraction` percentile of ascending `ordered` values, as percentile_cont computes it."""
    if not ordered:
        raise ValueError("percentile of no values")
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    below, above = ordered[lower], ordered[upper]
    return below + (above - below) * (position - lower)


def time_to_convert(seconds: Iterable[int]) -> dict[str, float] | None:
    """p50, p90 and p99 of seconds from click to conversion; None when nothing converted."""
    ordered = sorted(seconds)
    if not ordered:
        return None
    return {name: round(percentile(ordered, q), 3) for name, q in PERCENTILES.items()}


def conversion_rate(converted: int, clicks: int) -> float:
    return round(converted / clicks, 6) if clicks else 0.0
