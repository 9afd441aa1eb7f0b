"""Fixtures that start the real server process against a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, create_key

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'thrad.db'}"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, tmp_path / "server.log")
    try:
        yield process
    finally:
        process.stop()
    errors = process.error_lines()
    assert not errors, "server logged errors:\n" + "\n".join(errors)


@pytest.fixture
def key(database_url: str, server: ServerProcess) -> dict[str, Any]:
    """A fresh API key of partner `acme` (JSON of `keys create --json`)."""
    return create_key(database_url)


@pytest.fixture
def client(server: ServerProcess, key: dict[str, Any]) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the server, authenticated with `key`."""
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key['api_key']}"},
        timeout=10,
    ) as http:
        yield http
