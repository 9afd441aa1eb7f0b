"""The one time budget a report runs under, checked wherever its work may take long.

The SQL is interrupted by it (SQLite's progress handler, PostgreSQL's statement_timeout), the
Python that shapes and sums the rows checks it as it goes, and the request waiting for the
report answers 503 when it passes, whatever the report thread is still doing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


class ReportTimedOut(Exception):
    """A report ran past its budget; its work so far is thrown away."""


@dataclass(frozen=True, slots=True)
class Deadline:
    budget_s: float
    at: float  # on time.monotonic()'s clock

    @classmethod
    def after(cls, budget_s: float) -> Deadline:
        return cls(budget_s, time.monotonic() + budget_s)

    def remaining_s(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        if self.passed():
            raise self.timed_out()

    def timed_out(self) -> ReportTimedOut:
        return ReportTimedOut(
            f"report stopped after {self.budget_s:g} s; ask for a shorter range or fewer groups"
        )

    def retry_after_s(self) -> int:
        """When to ask again: by then the report threads have given up what they were doing."""
        return max(1, math.ceil(self.budget_s))
