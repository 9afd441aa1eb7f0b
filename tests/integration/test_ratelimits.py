"""Per-key rate limits: 429 with Retry-After and RateLimit-* headers, checked before the body.

Most tests share one server per module (and store), each with keys of a partner of its own.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.server import ServerProcess, cli, create_key, export
from tests.integration.tagging import SERVER_ENV, new_tag_id, register_tag

REDIS_URL = "redis://127.0.0.1:6379/0"


def _event() -> dict[str, str]:
    return {"event_name": "page_view", "event_id": str(uuid.uuid4()), "tag_id": "rl"}


def test_key_over_its_rate_limit_gets_429_with_retry_after(
    module_server: ServerProcess, partner: str
) -> None:
    key = create_key(module_server.database_url, partner, "limited", "--rate-limit", "5")
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    with httpx.Client(base_url=module_server.base_url, headers=headers, timeout=10) as http:
        statuses = [http.post("/v1/api/collect", json=_event()) for _ in range(20)]
    limited = [r for r in statuses if r.status_code == 429]
    assert 5 <= sum(r.status_code == 204 for r in statuses) <= 10
    assert limited, "no request was limited"
    answer = limited[0]
    assert answer.json()["error"]["code"] == "rate_limited"
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["RateLimit-Limit"] == "5"
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert int(answer.headers["RateLimit-Reset"]) >= 1
    # Only the admitted requests were stored.
    stored = export(module_server.database_url, "events", "--partner", partner)
    assert len(stored) == sum(r.status_code == 204 for r in statuses)


def test_rate_limit_is_checked_before_the_body_is_parsed(
    module_server: ServerProcess, partner: str
) -> None:
    key = create_key(module_server.database_url, partner, "limited", "--rate-limit", "1")
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    with httpx.Client(base_url=module_server.base_url, headers=headers, timeout=10) as http:
        answers = [http.post("/v1/api/collect", content=b"not json") for _ in range(5)]
    codes = [r.status_code for r in answers]
    assert codes[0] == 400
    assert 429 in codes


def test_keys_update_changes_the_limit_of_a_running_server(
    module_server: ServerProcess, partner: str
) -> None:
    key = create_key(module_server.database_url, partner, "limited", "--rate-limit", "2")
    cli(module_server.database_url, "keys", "update", key["key_id"], "--rate-limit", "1000")
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    deadline = time.monotonic() + 6
    with httpx.Client(base_url=module_server.base_url, headers=headers, timeout=10) as http:
        while True:
            # The key's window is empty at first (never used); after a refused round, a new one.
            codes = [http.post("/v1/api/collect", json=_event()).status_code for _ in range(10)]
            if codes.count(204) == 10:
                break
            assert time.monotonic() < deadline, f"new limit not applied: {codes}"
            time.sleep(1.1)


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not running on 127.0.0.1:6379 (required in CI)")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return REDIS_URL


def test_redis_shares_one_limit_across_processes(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    """Two server processes with THRAD_REDIS_URL admit one key's limit in total, not each.
    (Servers of its own: the Redis setting is only its.)"""
    env = {"THRAD_REDIS_URL": redis_url}
    first = ServerProcess(database_url, tmp_path / "a.log", env=env)
    second = ServerProcess(database_url, tmp_path / "b.log", env=env)
    try:
        key = create_key(database_url, "acme", "shared", "--rate-limit", "10")
        headers = {"Authorization": f"Bearer {key['api_key']}"}
        codes = []
        with httpx.Client(headers=headers, timeout=10) as http:
            for i in range(30):
                target = (first if i % 2 else second).base_url
                codes.append(http.post(f"{target}/v1/api/collect", json=_event()).status_code)
        # One shared sliding window: about 10 admitted in total, never 10 per process.
        assert 10 <= codes.count(204) < 20, codes
        assert codes.count(429) > 10
    finally:
        first.stop()
        second.stop()


def test_redis_keeps_one_daily_count_per_tag_that_a_new_cap_applies_to(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    """A browser Tag's daily cap counts the requests admitted today once for every process
    sharing Redis, and a cap the operator changes applies to that count: 3 admitted under a cap
    of 3, then a cap of 4 admits one more, on a process started after the change."""
    env = {**SERVER_ENV, "THRAD_REDIS_URL": redis_url}
    origin = "https://shop.example.com"
    headers = {"origin": origin, "content-type": "text/plain"}
    first = ServerProcess(database_url, tmp_path / "a.log", env=env)
    second: ServerProcess | None = None
    try:
        tag_id = new_tag_id()
        register_tag(database_url, "acme", tag_id, origin, extra=("--daily-cap", "3"))
        body = f'{{"tag_id": "{tag_id}", "event_name": "page_view"}}'

        def send(server: ServerProcess) -> int:
            url = f"{server.base_url}/v1/tag/collect"
            return httpx.post(url, content=body, headers=headers, timeout=10).status_code

        assert [send(first) for _ in range(5)] == [204, 204, 204, 429, 429]
        cli(database_url, "tags", "update", tag_id, "--daily-cap", "4", env=SERVER_ENV)
        # Started after the change, it reads the tag (and its new cap) afresh.
        second = ServerProcess(database_url, tmp_path / "b.log", env=env)
        assert [send(second) for _ in range(3)] == [204, 429, 429]
    finally:
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.parametrize("limit", ["THRAD_TAG_RATE_LIMIT_PER_S", "THRAD_TAG_IP_RATE_LIMIT_PER_S"])
def test_redis_shares_the_tags_per_second_limits_across_processes(
    database_url: str, tmp_path: Path, redis_url: str, limit: str
) -> None:
    """The browser Tag's limits per tag and per client IP hold for every process sharing Redis:
    two server processes admit one tag's (one address's) 10 a second in total, not 10 each."""
    others = {"THRAD_TAG_RATE_LIMIT_PER_S": "100000", "THRAD_TAG_IP_RATE_LIMIT_PER_S": "100000"}
    # The browser's address comes through a trusted proxy, one of the test's own: Redis is
    # shared with every other test, and 127.0.0.1 with all of them.
    proxy = {"THRAD_TRUSTED_PROXIES": "127.0.0.1/32"}
    env = {**SERVER_ENV, **others, **proxy, limit: "10", "THRAD_REDIS_URL": redis_url}
    origin = "https://shop.example.com"
    browser = f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    headers = {"origin": origin, "content-type": "text/plain", "x-forwarded-for": browser}
    first = ServerProcess(database_url, tmp_path / "a.log", env=env)
    second = ServerProcess(database_url, tmp_path / "b.log", env=env)
    try:
        tag_id = new_tag_id()
        register_tag(database_url, "acme", tag_id, origin)
        body = f'{{"tag_id": "{tag_id}", "event_name": "page_view"}}'
        codes = []
        with httpx.Client(headers=headers, timeout=10) as http:
            for i in range(30):
                target = (first if i % 2 else second).base_url
                codes.append(http.post(f"{target}/v1/tag/collect", content=body).status_code)
        # One shared sliding window: about 10 admitted in total, never 10 per process.
        assert 10 <= codes.count(204) < 20, codes
        assert codes.count(429) > 10
    finally:
        first.stop()
        second.stop()


def test_serve_refuses_to_start_when_redis_is_unreachable(
    database_url: str, tmp_path: Path
) -> None:
    """A start of its own, with a setting only it uses (and which never serves)."""
    with pytest.raises(RuntimeError, match="THRAD_REDIS_URL"):
        ServerProcess(
            database_url, tmp_path / "s.log", env={"THRAD_REDIS_URL": "redis://127.0.0.1:1/0"}
        )
