"""Where the test data lives: tests/data in the repository, or $THRAD_TESTDATA instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


def testdata_dir() -> Path:
    """The testdata folder (it holds geoip/)."""
    given = os.environ.get("THRAD_TESTDATA")
    return Path(given).resolve() if given else DATA


def geoip_db(name: str) -> Path:
    """One of MaxMind's test databases, e.g. geoip_db("GeoIP2-City-Test")."""
    path = testdata_dir() / "geoip" / f"{name}.mmdb"
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    return path
