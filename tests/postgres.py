"""A fresh PostgreSQL schema per test, on the local server; skipped (failed in CI) without one."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

# The machine's PostgreSQL (trust auth); THRAD_TEST_POSTGRES_URL points the tests elsewhere.
POSTGRES_URL = os.environ.get(
    "THRAD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@functools.cache
def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {first_line}"
    return None


def require_postgres() -> None:
    """Skip without PostgreSQL; in CI (CI=true) a missing PostgreSQL fails the run instead."""
    reason = postgres_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def url_with_schema(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a new, empty schema (the store's tables go there), dropped afterwards."""
    require_postgres()
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    try:
        yield url_with_schema(schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


class PrivateCluster:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, a free port), so a
    test may stop and start it without touching the machine's server others are using."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="thrad-pg-"))
        self.data = self.folder / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        # initdb refuses to run as root: the cluster then belongs to the postgres user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bin_dir / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c max_connections=40 -c shared_buffers=16MB"
        )
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def private_cluster_missing() -> str | None:
    """Why this machine cannot run a private PostgreSQL for a test, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found and shutil.which("initdb") is None:
        return "no initdb to start a private PostgreSQL with"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and initdb refuses root"
    return None


@contextlib.contextmanager
def private_cluster(port: int) -> Iterator[PrivateCluster]:
    """A started private PostgreSQL; skipped without one (failed in CI), removed afterwards."""
    reason = private_cluster_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = found[-1] if found else Path(shutil.which("initdb") or "initdb")
    cluster = PrivateCluster(initdb.parent, port)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
