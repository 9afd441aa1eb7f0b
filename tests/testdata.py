"""Where the shared test data lives: shared/testdata beside the repository, or $THRAD_TESTDATA.

The repository is cloned with `shared/` next to it (locally and in CI), so the data is found
relative to this file, wherever the clone is. Missing data skips a test on a developer's
machine, and fails it in CI (CI=true), where a skip would hide that nothing was tested.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def testdata_dir() -> Path:
    """The shared testdata folder (it holds geoip/), or a skip (a failure in CI)."""
    candidates = []
    if given := os.environ.get("THRAD_TESTDATA"):
        candidates.append(Path(given))
    candidates.append(REPO / ".." / "shared" / "testdata")
    candidates.append(REPO / "shared" / "testdata")
    for candidate in candidates:
        if (candidate / "geoip").is_dir():
            return candidate.resolve()
        if candidate.is_dir() and any(candidate.glob("*.mmdb")):
            return candidate.parent.resolve()  # THRAD_TESTDATA named geoip/ itself
    message = f"shared test data not found (looked in {', '.join(map(str, candidates))})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI must have shared/ beside the clone or THRAD_TESTDATA")
    pytest.skip(message + "; set THRAD_TESTDATA")


def geoip_db(name: str) -> Path:
    """One of MaxMind's test databases, e.g. geoip_db("GeoIP2-City-Test")."""
    path = testdata_dir() / "geoip" / f"{name}.mmdb"
    if not path.is_file():
        message = f"{path} is missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
