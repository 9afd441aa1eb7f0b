"""API keys through the CLI and the running server: creation, listing, revocation, expiry.

Contract: "Revoking a key takes effect within 5 seconds on every process; an expired key is
refused at once." and "With --json prints one JSON object: {key_id, api_key, partner_id, label,
expires_at}. The secret is shown only here, never stored in clear."
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, cli, create_key, expired_key

COLLECT = "/v1/api/collect"
REVOCATION_BOUND_S = 5.0


def _collect_status(base_url: str, api_key: str, client: httpx.Client | None = None) -> int:
    """One collect; a fresh connection each time unless a client is given."""
    args: dict[str, Any] = {
        "json": {"event_name": "page_view"},
        "headers": {"Authorization": f"Bearer {api_key}"},
    }
    if client is not None:
        return client.post(f"{base_url}{COLLECT}", **args).status_code
    return httpx.post(f"{base_url}{COLLECT}", timeout=10, **args).status_code


def test_keys_create_json_prints_the_contracts_object(shared_server: ServerProcess) -> None:
    """Contract: keys create --json prints {key_id, api_key, partner_id, label, expires_at}."""
    key = create_key(shared_server.database_url, "newpartner", "backend")
    assert set(key) == {"key_id", "api_key", "partner_id", "label", "expires_at"}
    assert key["api_key"].startswith("thr_")
    assert key["label"] == "backend"
    assert key["expires_at"] is None
    assert _collect_status(shared_server.base_url, key["api_key"]) == 204


def test_keys_create_for_a_known_partner_reuses_it(shared_server: ServerProcess) -> None:
    """Contract: keys create 'creates the partner if new' (and reuses it otherwise)."""
    first = create_key(shared_server.database_url, "samepartner", "a")
    second = create_key(shared_server.database_url, "samepartner", "b")
    assert first["partner_id"] == second["partner_id"]
    assert first["key_id"] != second["key_id"]
    assert first["api_key"] != second["api_key"]


def test_keys_create_expires_at_is_printed_in_utc(shared_server: ServerProcess) -> None:
    """--expires-at ISO8601 with an offset is the same instant, shown in UTC."""
    key = create_key(
        shared_server.database_url, "acme", "exp", "--expires-at", "2099-01-01T02:00:00+02:00"
    )
    assert key["expires_at"] == "2099-01-01T00:00:00Z"
    assert _collect_status(shared_server.base_url, key["api_key"]) == 204


def test_keys_list_json_never_prints_the_secret(shared_server: ServerProcess) -> None:
    """Contract: the secret is shown only by keys create; keys list --json never prints it."""
    key = create_key(shared_server.database_url, "acme", "listed")
    out = cli(shared_server.database_url, "keys", "list", "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    [entry] = [e for e in entries if e["key_id"] == key["key_id"]]
    assert entry["label"] == "listed"
    assert entry["partner_id"] == key["partner_id"]
    assert "api_key" not in entry
    assert key["api_key"] not in out
    assert key["api_key"][4:] not in out
    plain = cli(shared_server.database_url, "keys", "list")
    assert key["api_key"] not in plain
    assert key["key_id"] in plain


def test_the_secret_is_not_stored_in_clear(tmp_path: Path) -> None:
    """Contract: the secret is never stored in clear (not in the database file, nor its WAL)."""
    database_url = f"sqlite:///{tmp_path / 'thrad.db'}"
    key = create_key(database_url, "acme", "at-rest")
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())
    assert key["key_id"].encode() in stored
    assert key["api_key"].encode() not in stored
    assert key["api_key"][4:].encode() not in stored


def test_revoking_an_unknown_key_fails(shared_server: ServerProcess) -> None:
    """keys revoke of a key that does not exist is an error, not a silent success."""
    with pytest.raises(RuntimeError, match="no key"):
        cli(shared_server.database_url, "keys", "revoke", "key_doesnotexist")


def _wait_refused(base_url: str, api_key: str, consecutive: int) -> float:
    """Seconds from now until the revocation took hold: when the first of `consecutive` fresh
    requests in a row that were all refused was sent (the time the streak itself takes to
    confirm is not counted). Infinite when no such streak came within 2 x the bound."""
    started = time.monotonic()
    streak_start = math.inf
    refused = 0
    while refused < consecutive:
        if time.monotonic() - started > 2 * REVOCATION_BOUND_S:
            return math.inf
        sent = time.monotonic()
        if _collect_status(base_url, api_key) == 401:
            streak_start = sent if refused == 0 else streak_start
            refused += 1
        else:
            refused = 0
            time.sleep(0.05)
    return streak_start - started


def test_revoked_key_is_refused_by_the_running_server_within_5_s(
    shared_server: ServerProcess,
) -> None:
    """Contract: revoking a key (CLI) takes effect within 5 seconds on a running server, also
    for a key the server has just authenticated (and may have cached)."""
    key = create_key(shared_server.database_url, "acme", "to-revoke")
    with httpx.Client(timeout=10) as http:
        for _ in range(3):
            assert _collect_status(shared_server.base_url, key["api_key"], http) == 204
    out = cli(shared_server.database_url, "keys", "revoke", key["key_id"])
    assert key["key_id"] in out
    elapsed = _wait_refused(shared_server.base_url, key["api_key"], consecutive=3)
    assert elapsed < REVOCATION_BOUND_S
    listed = [
        json.loads(line)
        for line in cli(shared_server.database_url, "keys", "list", "--json").splitlines()
    ]
    [entry] = [e for e in listed if e["key_id"] == key["key_id"]]
    assert entry["revoked_at"]


@pytest.mark.long
def test_revoked_key_is_refused_by_every_worker_within_5_s(tmp_path: Path) -> None:
    """Contract: revoking takes effect within 5 seconds *on every process* (2 workers here, a
    server of its own)."""
    database_url = f"sqlite:///{tmp_path / 'thrad.db'}"
    server = ServerProcess(database_url, tmp_path / "server.log", workers=2)
    try:
        key = create_key(database_url)
        # Fresh connections spread over both workers, so each one caches the valid key.
        for _ in range(12):
            assert _collect_status(server.base_url, key["api_key"]) == 204
        cli(database_url, "keys", "revoke", key["key_id"])
        elapsed = _wait_refused(server.base_url, key["api_key"], consecutive=20)
        assert elapsed < REVOCATION_BOUND_S
    finally:
        server.stop()
    assert not server.error_lines()


def test_key_whose_expiry_passed_is_refused_at_once(shared_server: ServerProcess) -> None:
    """Contract: an expired key is refused at once (its very first request)."""
    key = expired_key(shared_server.database_url)
    assert _collect_status(shared_server.base_url, key["api_key"]) == 401


def test_keys_create_refuses_an_expiry_already_past(shared_server: ServerProcess) -> None:
    """A key created already expired could never be used: `keys create` refuses it."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    with pytest.raises(RuntimeError, match="already past"):
        create_key(shared_server.database_url, "acme", "expired", "--expires-at", past)


def test_key_expiring_while_in_use_is_refused_as_soon_as_it_expires(
    shared_server: ServerProcess,
) -> None:
    """Contract: an expired key is refused at once: a key in steady use (its lookup cached) is
    refused by the first request after its expiry, not after a cache delay."""
    for lifetime_s in (3, 6, 12):  # a longer life when a loaded machine was too slow to use it
        expires = datetime.now(UTC) + timedelta(seconds=lifetime_s)
        key = create_key(
            shared_server.database_url, "acme", "expiring", "--expires-at", expires.isoformat()
        )
        accepted = 0
        with httpx.Client(timeout=10) as http:
            while datetime.now(UTC) < expires - timedelta(seconds=0.5):
                status = _collect_status(shared_server.base_url, key["api_key"], http)
                if status == 401 and datetime.now(UTC) >= expires:
                    break  # sent in time, answered after the expiry: rightly refused
                assert status == 204
                accepted += 1
                time.sleep(0.1)
            if not accepted:
                continue
            time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.02)
            assert _collect_status(shared_server.base_url, key["api_key"], http) == 401
            return
    pytest.fail("the key expired before any request could use it, three times")


def test_keys_list_has_a_header_row_and_tells_active_expired_and_revoked_apart(
    module_server: ServerProcess, partner: str
) -> None:
    """`keys list` prints a header row; the status column says `expired` for a key past its
    expiry and `revoked` for a revoked one (an expired key used to show as `active`)."""
    active = create_key(module_server.database_url, partner, "live", "--rate-limit", "7")
    revoked = create_key(module_server.database_url, partner, "gone")
    cli(module_server.database_url, "keys", "revoke", revoked["key_id"])
    expired = expired_key(module_server.database_url, partner)
    lines = cli(module_server.database_url, "keys", "list").splitlines()
    assert lines[0].split() == [
        "KEY_ID",
        "PARTNER",
        "LABEL",
        "PREFIX",
        "STATUS",
        "EXPIRES_AT",
        "RATE_LIMIT",
        "LAST_USED_AT",
        "TEST",
    ]
    status = lines[0].index("STATUS")
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert by_id[active["key_id"]][status:].split()[0] == "active"
    assert by_id[revoked["key_id"]][status:].split()[0] == "revoked"
    assert by_id[expired["key_id"]][status:].split()[0] == "expired"
    assert by_id[active["key_id"]][lines[0].index("RATE_LIMIT") :].split()[0] == "7"
    listed = {
        entry["key_id"]: entry["status"]
        for entry in map(
            json.loads, cli(module_server.database_url, "keys", "list", "--json").splitlines()
        )
        if entry["partner"] == partner
    }
    assert listed == {
        active["key_id"]: "active",
        revoked["key_id"]: "revoked",
        expired["key_id"]: "expired",
    }


def test_last_used_at_moves_only_when_the_key_is_let_in(
    module_server: ServerProcess, partner: str
) -> None:
    """A request refused with 401 (revoked key) leaves last_used_at alone, so a revoked key
    never looks in use; an accepted request sets it."""
    used = create_key(module_server.database_url, partner, "used")
    revoked = create_key(module_server.database_url, partner, "revoked")
    cli(module_server.database_url, "keys", "revoke", revoked["key_id"])
    assert _collect_status(module_server.base_url, used["api_key"]) == 204
    assert _collect_status(module_server.base_url, revoked["api_key"]) == 401

    def last_used() -> dict[str, Any]:
        entries = map(
            json.loads, cli(module_server.database_url, "keys", "list", "--json").splitlines()
        )
        return {entry["key_id"]: entry["last_used_at"] for entry in entries}

    deadline = time.monotonic() + 5
    while last_used()[used["key_id"]] is None:
        assert time.monotonic() < deadline, "last_used_at never set for an accepted request"
        time.sleep(0.1)
    assert last_used()[revoked["key_id"]] is None


def test_keys_update_refuses_a_revoked_key(shared_server: ServerProcess) -> None:
    """Changing the limit of a revoked key would suggest it still works: refused."""
    key = create_key(shared_server.database_url, "acme", "gone")
    cli(shared_server.database_url, "keys", "revoke", key["key_id"])
    with pytest.raises(RuntimeError, match="revoked"):
        cli(shared_server.database_url, "keys", "update", key["key_id"], "--rate-limit", "5")
