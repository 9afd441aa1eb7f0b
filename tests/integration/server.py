"""Start the real `thrad-events serve` process on a free port and talk to it over HTTP."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from thrad_events.cli import main

PYTHON = sys.executable


# Ports for servers the tests start: below the kernel's ephemeral range, from which every
# client connection takes its own port. A port taken from that range can be handed to some
# client between the check here and the server's bind.
SERVER_PORTS = range(20_000, 32_000)
# Its own source: hypothesis seeds the random module for the tests it runs.
_pick = random.SystemRandom()


def free_port() -> int:
    """A port free now, picked at random so that parallel test processes rarely meet."""
    for _ in range(200):
        port = _pick.choice(SERVER_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a test server")


def clean_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any THRAD_* of the developer's, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THRAD_")}
    env["THRAD_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def cli(database_url: str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run a `thrad-events` subcommand against the database; return its stdout.

    A test may start with the CLI before any server: only `serve` and `migrate` create a
    database, so a SQLite file that does not exist yet is migrated first.
    """
    path = Path(database_url.removeprefix("sqlite:///"))
    if database_url.startswith("sqlite:///") and args[0] != "migrate" and not path.exists():
        cli(database_url, "migrate", env=env)
    # In this process: the same click command as `python -m thrad_events`, without an
    # interpreter start and the imports per call (tests call the CLI hundreds of times).
    # Tests of the CLI as a process (exit codes, what reaches a terminal) run it themselves.
    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("THRAD_")}
    environment.update(THRAD_DATABASE_URL=database_url, **(env or {}))
    done = CliRunner().invoke(main, list(args), env=environment)
    if done.exit_code != 0:
        failure = done.stderr or repr(done.exception)
        raise RuntimeError(f"thrad-events {' '.join(args)} failed: {failure}")
    return done.stdout


def unique_name(prefix: str) -> str:
    """A name no other test uses: tests sharing a module's server keep to partners (and ids) of
    their own."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_key(
    database_url: str, partner: str = "acme", label: str = "test", *extra: str
) -> dict[str, Any]:
    out = cli(
        database_url, "keys", "create", "--partner", partner, "--label", label, "--json", *extra
    )
    return dict(json.loads(out))


def expired_key(database_url: str, partner: str = "acme") -> dict[str, Any]:
    """A key whose expiry has just passed, never used (`keys create` refuses a past expiry, so
    it is created to expire shortly; on a machine so loaded that the command outlives the
    margin, once more with a wider one)."""
    for margin_s in (1.5, 6.0):
        expires = datetime.now(UTC) + timedelta(seconds=margin_s)
        try:
            key = create_key(database_url, partner, "expired", "--expires-at", expires.isoformat())
        except RuntimeError as exc:
            if "already past" not in str(exc):
                raise
            continue
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
        return key
    raise RuntimeError("could not create a key expiring soon: the machine is too loaded")


def export(database_url: str, table: str, *extra: str) -> list[dict[str, Any]]:
    out = cli(database_url, "export", table, *extra)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class ServerProcess:
    """One `thrad-events serve` process with its log captured to a file."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "thrad_events",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=clean_env(database_url, env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until this server is listening and ready. The port was free when picked, but a test
        server of another test process may take it first: its /readyz would answer for ours,
        so the port must be ours by our own log (uvicorn logs it once it has bound it)."""
        listening = f"Uvicorn running on {self.base_url} "
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if listening not in self.log():
                time.sleep(0.05)
                continue
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def error_lines(self) -> list[str]:
        """Log lines at error level or above: a server error fails the test that caused it."""
        found = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if "Traceback" in line:
                    found.append(line)
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                found.append(line)
        return found

    @contextlib.contextmanager
    def logs_no_new_errors(self) -> Iterator[None]:
        """Fail when the server logs an error while the block runs (a test's own requests)."""
        before = len(self.error_lines())
        yield
        errors = self.error_lines()[before:]
        assert not errors, "server logged errors:\n" + "\n".join(errors)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def running_server(
    database_url: str,
    log_path: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """A server for the block, stopped after it; an error it logged fails the block (also one
    logged while stopping, which a test of its own requests would not see)."""
    process = ServerProcess(database_url, log_path, workers=workers, env=env)
    try:
        yield process
    finally:
        process.stop()
    errors = process.error_lines()
    assert not errors, "server logged errors:\n" + "\n".join(errors)


def api_client(server: ServerProcess, token: str, timeout_s: float = 10) -> httpx.Client:
    """An HTTP client of the server sending `token` (an API key or the admin token)."""
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
    )


def export_csv(
    database_url: str, table: str, *extra: str
) -> tuple[list[str], list[dict[str, str]]]:
    """`export TABLE --format csv`: the header's names and the rows as dicts of text."""
    out = cli(database_url, "export", table, "--format", "csv", *extra)
    reader = csv.DictReader(io.StringIO(out))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def click_link(
    database_url: str,
    base_url: str,
    landing_url: str = "https://shop.example.com/landing",
    *options: str,
    env: Mapping[str, str] | None = None,
) -> str:
    """A signed click link printed by `thrad-events clicks link ... --base-url base_url`."""
    out = cli(
        database_url,
        "clicks",
        "link",
        "--landing-url",
        landing_url,
        "--base-url",
        base_url,
        *options,
        env=env,
    )
    return out.strip()


def follow_click(link: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """GET a click link without following its redirect."""
    return httpx.get(link, headers=headers, follow_redirects=False, timeout=10)


def real_click(
    server: ServerProcess,
    *options: str,
    landing_url: str = "https://shop.example.com/landing",
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """A click stored by the server: sign a link with the CLI (`clicks link` options), GET it
    (with `headers`), read thrad_click_id from the redirect."""
    link = click_link(server.database_url, server.base_url, landing_url, *options, env=env)
    response = follow_click(link, headers)
    if response.status_code != 302:
        raise RuntimeError(f"click link answered {response.status_code}: {response.text}")
    return str(httpx.URL(response.headers["location"]).params["thrad_click_id"])


def error_of(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is the service's JSON error with this status and code; its `error` object."""
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"] == "application/json", answer.headers
    body = answer.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["details"], list), error
    assert "Traceback" not in answer.text
    return error


def admin_fingerprint(token: str) -> str:
    """How the audit trail names the holder of an admin token."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]
