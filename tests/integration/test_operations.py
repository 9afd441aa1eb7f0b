"""What operators and outside checks rely on: health, readiness, metrics, the OpenAPI document
and its page, and the dev key printed on the first start.

Contract, HTTP surface: GET /healthz 200 while the process lives; GET /readyz 200 when storage
answers; GET /metrics Prometheus text format; GET /openapi.json, GET /docs the OpenAPI document
of every public endpoint and a page that renders it. Contract, `make run`: "On first start with
an empty database it creates a dev partner and one API key and prints the key once."
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest

from tests.integration.server import ServerProcess, clean_env, cli, free_port
from thrad_events.cli import main

PUBLIC = [
    ("/v1/api/collect", "post"),
    ("/api/collect", "post"),
    ("/v1/api/conversion", "post"),
    ("/api/conversion", "post"),
    ("/v1/click", "get"),
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/metrics", "get"),
]
KEY = re.compile(r"thr_[A-Za-z0-9_-]{43}")


def test_healthz_is_200(shared_server: ServerProcess) -> None:
    """Contract: GET /healthz 200 while the process lives (no key needed)."""
    response = httpx.get(f"{shared_server.base_url}/healthz")
    assert response.status_code == 200


def test_readyz_is_200_when_storage_answers(shared_server: ServerProcess) -> None:
    """Contract: GET /readyz 200 when storage answers."""
    response = httpx.get(f"{shared_server.base_url}/readyz")
    assert response.status_code == 200


def test_metrics_is_prometheus_text_counting_requests(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: GET /metrics in Prometheus text format; it counts the requests served."""
    assert shared_client.post("/v1/api/collect", json={"event_name": "m"}).status_code == 204
    response = httpx.get(f"{shared_server.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# HELP " in text
    assert "# TYPE " in text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples
    for line in samples:
        name_and_labels, _, value = line.rpartition(" ")
        assert re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?$", name_and_labels), line
        float(value)
    assert re.search(r'^thrad_\w+\{[^}]*route="collect"[^}]*\} [1-9]', text, re.MULTILINE)


def test_openapi_lists_every_public_endpoint(shared_server: ServerProcess) -> None:
    """Contract: /openapi.json is the OpenAPI document of every public endpoint."""
    response = httpx.get(f"{shared_server.base_url}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    for path, method in PUBLIC:
        assert method in document["paths"].get(path, {}), f"{method.upper()} {path}"


def test_openapi_documents_the_seed_request_bodies_and_answers(
    shared_server: ServerProcess,
) -> None:
    """Seeds: collect requires event_name; conversion requires click_id, conversion_time,
    conversion_value, currency; answers 204 / 200 and the error table's statuses."""
    document = httpx.get(f"{shared_server.base_url}/openapi.json").json()
    schemas = document["components"]["schemas"]

    def body_schema(path: str) -> dict[str, object]:
        ref = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        name = ref["schema"]["$ref"].rsplit("/", 1)[-1]
        schema: dict[str, object] = schemas[name]
        return schema

    collect = body_schema("/v1/api/collect")
    assert collect["required"] == ["event_name"]
    conversion = body_schema("/v1/api/conversion")
    assert sorted(conversion["required"]) == sorted(  # type: ignore[call-overload]
        ["click_id", "conversion_time", "conversion_value", "currency"]
    )
    collect_answers = document["paths"]["/v1/api/collect"]["post"]["responses"]
    assert {"204", "400", "401", "413", "422"} <= set(collect_answers)
    conversion_answers = document["paths"]["/v1/api/conversion"]["post"]["responses"]
    assert {"200", "400", "401", "404", "413", "422"} <= set(conversion_answers)


def test_docs_is_an_html_page_rendering_the_document(shared_server: ServerProcess) -> None:
    """Contract: GET /docs is a page that renders the OpenAPI document."""
    response = httpx.get(f"{shared_server.base_url}/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "/openapi.json" in response.text


def test_unknown_path_is_a_json_404(shared_server: ServerProcess) -> None:
    """Contract: errors are JSON, also for a path that does not exist."""
    response = httpx.get(f"{shared_server.base_url}/v1/api/nothing-here")
    assert response.status_code == 404
    assert "code" in response.json()["error"]


def test_first_serve_prints_a_dev_key_once_and_it_works(tmp_path: Path) -> None:
    """Contract: on first start with an empty database serve creates a `dev` partner and one
    API key and prints the key once; a second start prints none."""
    database_url = f"sqlite:///{tmp_path / 'thrad.db'}"
    first = ServerProcess(database_url, tmp_path / "first.log")
    try:
        keys = KEY.findall(first.log())
        assert len(keys) == 1, first.log()
        response = httpx.post(
            f"{first.base_url}/v1/api/collect",
            json={"event_name": "page_view"},
            headers={"Authorization": f"Bearer {keys[0]}"},
        )
        assert response.status_code == 204
    finally:
        first.stop()
    listed = [json.loads(line) for line in cli(database_url, "keys", "list", "--json").splitlines()]
    assert [(entry["partner"], entry["label"]) for entry in listed] == [("dev", "dev")]

    second = ServerProcess(database_url, tmp_path / "second.log")
    try:
        assert KEY.findall(second.log()) == []
        assert "thr_" not in second.log()
    finally:
        second.stop()
    assert len(cli(database_url, "keys", "list", "--json").splitlines()) == 1
    assert not first.error_lines()
    assert not second.error_lines()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
def test_operational_endpoints_need_no_key(shared_server: ServerProcess, path: str) -> None:
    """Probes and scrapers call these without an API key."""
    assert httpx.get(f"{shared_server.base_url}{path}").status_code == 200


def test_readyz_names_redis_when_it_stops_answering_and_recovers_with_it(
    database_url: str, tmp_path: Path
) -> None:
    """Readiness tells the truth: with THRAD_REDIS_URL set, a Redis that stops answering makes
    /readyz a 503 naming `redis` (storage still fine), and it is 200 again once Redis is back.
    On both stores: PostgreSQL nodes are the ones that share Redis."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start_redis() -> subprocess.Popen[bytes]:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        redis = subprocess.Popen(
            [redis_server, *args, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                return redis
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    redis = start_redis()
    server = ServerProcess(
        database_url,
        tmp_path / "server.log",
        env={"THRAD_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
    )
    try:
        assert httpx.get(f"{server.base_url}/readyz").json() == {"status": "ready"}
        redis.terminate()
        redis.wait(10)
        down = httpx.get(f"{server.base_url}/readyz", timeout=10)
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "failed": ["redis"]}
        assert down.headers["Retry-After"] == "1"
        redis = start_redis()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.base_url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "readyz stayed 503 after Redis came back"
            time.sleep(0.1)
    finally:
        server.stop()
        redis.terminate()
        redis.wait(10)


# Every command that opens the database, as an operator would type it.
STORE_COMMANDS = [
    ("keys", "list"),
    ("keys", "create", "--partner", "p", "--label", "l"),
    ("keys", "revoke", "key_0123456789abcdef"),
    ("keys", "update", "key_0123456789abcdef", "--rate-limit", "5"),
    ("keys", "rotate", "key_0123456789abcdef"),
    ("partners", "list"),
    ("partners", "create", "acme"),
    ("tags", "list"),
    ("tags", "create", "--partner", "p", "--tag-id", "t", "--origin", "https://a.example"),
    ("tags", "update", "t", "--daily-cap", "5"),
    ("audit",),
    ("clicks", "link", "--landing-url", "https://shop.example.com/"),
    ("clicks", "create"),
    ("export", "events"),
    ("report", "events"),
    ("rejections",),
    ("test-rows", "purge"),
]
# The commands that make the database, and those that never open it.
NOT_STORE_COMMANDS = {
    ("serve",),
    ("migrate",),
    ("send", "collect"),
    ("send", "conversion"),
    ("geoip", "info"),
    ("geoip", "lookup"),
}


def test_every_command_is_checked_against_a_missing_database() -> None:
    """A new command is added to STORE_COMMANDS (or to NOT_STORE_COMMANDS, saying why)."""

    def leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from leaves(sub, (*path, name))
        else:
            yield path

    commands = set(leaves(main))
    checked = {next(c[:n] for n in (2, 1) if c[:n] in commands) for c in STORE_COMMANDS}
    assert commands - NOT_STORE_COMMANDS == checked


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_a_command_other_than_serve_or_migrate_never_creates_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Pointed at a missing SQLite file (a relative path, from another directory), a command
    stops with one line naming the resolved path instead of starting an empty database with a
    click secret of its own."""
    line = refusal_line(command, "sqlite:///var/thrad.db", tmp_path)
    assert str(tmp_path / "var" / "thrad.db") in line
    assert not (tmp_path / "var").exists()


def refusal_line(command: tuple[str, ...], database_url: str, cwd: Path) -> str:
    """The one line of stderr a command that failed printed (run as a process, from `cwd`)."""
    done = subprocess.run(
        [sys.executable, "-m", "thrad_events", *command],
        env=clean_env(database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("content", ["empty", "another program's", "no database"])
def test_a_command_other_than_serve_or_migrate_leaves_a_file_that_is_not_ours_alone(
    tmp_path: Path, content: str
) -> None:
    """An existing file that holds no database of ours (empty, another program's tables, not
    SQLite at all) is refused like a missing one, and left as it was."""
    path = tmp_path / "thrad.db"
    if content == "empty":
        path.touch()
    elif content == "no database":
        path.write_bytes(b"a text file, not SQLite\n" * 200)
    else:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.execute("CREATE TABLE notes (body TEXT)")
            connection.commit()
    before = path.read_bytes()
    line = refusal_line(("keys", "list"), f"sqlite:///{path}", tmp_path)
    assert f"no thrad-events database at {path}" in line
    assert path.read_bytes() == before


def test_migrate_creates_the_database_that_other_commands_then_use(tmp_path: Path) -> None:
    """`migrate` may create the file; after it, the same relative URL works for `keys create`."""
    env = clean_env("sqlite:///var/thrad.db")
    for command in (["migrate"], ["keys", "create", "--partner", "p", "--label", "l"]):
        subprocess.run(
            [sys.executable, "-m", "thrad_events", *command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
            check=True,
        )
    assert (tmp_path / "var" / "thrad.db").exists()
