"""Fixtures that start the real server process against a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser import launch_chromium
from tests.integration.server import (
    ServerProcess,
    api_client,
    create_key,
    running_server,
    unique_name,
)
from tests.postgres import postgres_schema

pytestmark = pytest.mark.integration


STORES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): tests SQLite's own behaviour; skipped for PostgreSQL"
    )


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test of a store runs twice: on a SQLite file and on a schema of its own in the
    local PostgreSQL (skipped without one, except in CI where that fails the run)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'thrad.db'}"
        return
    skip_if_sqlite_only(request)
    with postgres_schema() as url:
        yield url


def skip_if_sqlite_only(request: pytest.FixtureRequest) -> None:
    """Skip a test marked sqlite_only (it is running on PostgreSQL)."""
    marker = request.node.get_closest_marker("sqlite_only")
    if marker is not None:
        pytest.skip(f"SQLite only: {marker.args[0] if marker.args else 'SQLite behaviour'}")


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own (a start costs about a second of CPU): for a test that needs
    an empty database or stops it; the others share `module_server`."""
    with running_server(database_url, tmp_path / "server.log") as process:
        yield process


@pytest.fixture
def key(database_url: str, server: ServerProcess) -> dict[str, Any]:
    """A fresh API key of partner `acme` (JSON of `keys create --json`)."""
    return create_key(database_url)


@pytest.fixture
def client(server: ServerProcess, key: dict[str, Any]) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the server, authenticated with `key`."""
    with api_client(server, key["api_key"]) as http:
        yield http


@pytest.fixture(scope="module", params=STORES)
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The store of a module's shared server: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('shared-db') / 'thrad.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def shared_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for a whole module, for tests that keep to rows of their own (unique ids)."""
    tmp = tmp_path_factory.mktemp("shared")
    with running_server(shared_database_url, tmp / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def shared_key(shared_server: ServerProcess) -> dict[str, Any]:
    """An API key of partner `acme` on the module's server, with room for bursts."""
    return create_key(shared_server.database_url, "acme", "test", "--rate-limit", "100000")


@pytest.fixture
def shared_client(
    shared_server: ServerProcess, shared_key: dict[str, Any]
) -> Iterator[httpx.Client]:
    """A client of the module's server; a server error logged during the test fails it."""
    with (
        shared_server.logs_no_new_errors(),
        api_client(shared_server, shared_key["api_key"]) as http,
    ):
        yield http


@pytest.fixture
def module_server(
    request: pytest.FixtureRequest, shared_database_url: str
) -> Iterator[ServerProcess]:
    """The module's server for one test that keeps to partners of its own and reads only their
    rows; an error the server logs during the test fails the test."""
    if not shared_database_url.startswith("sqlite:"):
        skip_if_sqlite_only(request)
    # Looked up only now: a skipped test starts no server.
    shared: ServerProcess = request.getfixturevalue("shared_server")
    with shared.logs_no_new_errors():
        yield shared


@pytest.fixture
def partner() -> str:
    """A partner no other test uses."""
    return unique_name("partner")


@pytest.fixture
def partner_key(module_server: ServerProcess, partner: str) -> dict[str, Any]:
    """A fresh API key of the test's own `partner` on the module's server."""
    return create_key(module_server.database_url, partner)


@pytest.fixture
def partner_client(
    module_server: ServerProcess, partner_key: dict[str, Any]
) -> Iterator[httpx.Client]:
    """A client of the module's server, authenticated with `partner_key`."""
    with api_client(module_server, partner_key["api_key"]) as http:
        yield http


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium (the system's), shared by a module's page tests. Not longer: the
    Playwright driver keeps an event loop running on the test thread while it is open, and
    tests elsewhere call asyncio.run()."""
    yield from launch_chromium()
