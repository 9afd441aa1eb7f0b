"""The browser Tag registry: GET / POST / PATCH /v1/admin/tags (admin token) and `tags` CLI.

Contract: "thrad-events tags create --partner P --tag-id T --origin https://shop.example.com
[--origin ...] (and POST /v1/admin/tags {"partner","tag_id","origins":[...]}), tags list";
"Admin endpoints need Authorization: Bearer <THRAD_ADMIN_TOKEN>; anything else is 401/403."
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server import ServerProcess, cli, create_key
from tests.integration.tagging import ADMIN_TOKEN, SERVER_ENV, new_tag_id, register_tag

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def registry_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("tag-registry")
    process = ServerProcess(shared_database_url, tmp / "server.log", env=SERVER_ENV)
    try:
        yield process
    finally:
        process.stop()
    errors = process.error_lines()
    assert not errors, "server logged errors:\n" + "\n".join(errors)


@pytest.fixture
def admin(registry_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry_server.base_url, headers=ADMIN, timeout=10) as client:
        yield client


def test_an_operator_registers_lists_and_caps_a_tag(admin: httpx.Client) -> None:
    tag_id = new_tag_id()
    body = {
        "partner": "acme",
        "tag_id": tag_id,
        "origins": ["HTTPS://Shop.Example.com:443/", "http://localhost:8080"],
    }
    created = admin.post("/v1/admin/tags", json=body)
    assert created.status_code == 201, created.text
    tag = created.json()
    assert tag["origins"] == ["http://localhost:8080", "https://shop.example.com"]
    assert (tag["partner"], tag["daily_cap"]) == ("acme", None)
    assert admin.post("/v1/admin/tags", json=body).status_code == 409
    capped = admin.patch("/v1/admin/tags", json={"tag_id": tag_id, "daily_cap": 1000})
    assert capped.json()["daily_cap"] == 1000
    listed = admin.get("/v1/admin/tags", params={"partner": "acme"}).json()["tags"]
    assert [t["daily_cap"] for t in listed if t["tag_id"] == tag_id] == [1000]
    uncapped = admin.patch("/v1/admin/tags", json={"tag_id": tag_id, "daily_cap": None})
    assert uncapped.json()["daily_cap"] is None
    missing = admin.patch("/v1/admin/tags", json={"tag_id": "no-such-tag", "daily_cap": 5})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        ("https://*.example.com", "wildcard"),
        ("https://shop.example.com/checkout", "a path"),
        ("javascript:alert(1)", "not http(s)"),
        ("https://user:pw@shop.example.com", "credentials"),
        ("shop.example.com", "no scheme"),
        ("https://shop.example.com?x=1", "a query"),
        ("https://", "no host"),
    ],
)
def test_an_origin_that_is_not_exactly_one_site_is_refused(
    admin: httpx.Client, origin: str, why: str
) -> None:
    body = {"partner": "acme", "tag_id": new_tag_id(), "origins": [origin]}
    answer = admin.post("/v1/admin/tags", json=body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "validation_error"), why
    assert answer.json()["error"]["details"][0]["field"] == "origins[0]"


def test_a_bad_registration_is_told_its_field(admin: httpx.Client) -> None:
    missing = admin.post("/v1/admin/tags", json={"partner": "acme"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "missing_field")
    reserved = {"partner": "acme", "tag_id": "site:shop", "origins": ["https://a.example"]}
    assert (
        admin.post("/v1/admin/tags", json=reserved).json()["error"]["details"][0]["field"]
        == "tag_id"
    )
    cap = {"partner": "acme", "tag_id": new_tag_id(), "origins": ["https://a.example"]}
    answer = admin.post("/v1/admin/tags", json={**cap, "daily_cap": -1})
    assert answer.status_code == 422
    assert admin.post("/v1/admin/tags", content=b"[]").json()["error"]["code"] == "invalid_json"


def test_only_the_admin_token_reaches_the_registry(registry_server: ServerProcess) -> None:
    """The admin API's rules: no or a wrong token 401 (with WWW-Authenticate), a partner's API
    key 403, on every method and both PATCH forms."""
    key = create_key(registry_server.database_url)
    base = f"{registry_server.base_url}/v1/admin/tags"
    body = {"partner": "acme", "tag_id": new_tag_id(), "origins": ["https://a.example"]}
    calls = [("GET", base), ("POST", base), ("PATCH", base), ("PATCH", f"{base}/some-tag")]
    for method, url in calls:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-xxxxxxxx"},
            {"Authorization": ADMIN_TOKEN},
        ):
            answer = httpx.request(method, url, json=body, headers=headers)
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthorized")
            assert answer.headers["www-authenticate"].startswith("Bearer"), (method, url)
        as_partner = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {key['api_key']}"}
        )
        assert (as_partner.status_code, as_partner.json()["error"]["code"]) == (403, "forbidden")
    listed = httpx.get(base, headers=ADMIN).json()["tags"]
    assert body["tag_id"] not in [tag["tag_id"] for tag in listed]


def test_the_cli_registers_lists_and_updates_tags(registry_server: ServerProcess) -> None:
    url, tag_id = registry_server.database_url, new_tag_id()
    tag = register_tag(url, "globex", tag_id, "https://globex.example", extra=("--daily-cap", "5"))
    assert (tag["partner"], tag["daily_cap"]) == ("globex", 5)
    listed = cli(url, "tags", "list", env=SERVER_ENV).splitlines()
    assert listed[0].split() == ["TAG_ID", "PARTNER", "DAILY_CAP", "ORIGINS"]
    assert any(line.split()[:3] == [tag_id, "globex", "5"] for line in listed)
    out = cli(url, "tags", "update", tag_id, "--daily-cap", "0", "--json", env=SERVER_ENV)
    assert json.loads(out)["daily_cap"] is None
    with pytest.raises(RuntimeError, match="wildcards"):
        register_tag(url, "globex", new_tag_id(), "https://*.globex.example")
    with pytest.raises(RuntimeError, match="already registered"):
        register_tag(url, "acme", tag_id, "https://acme.example")


@pytest.mark.sqlite_only("the per-IP limit is the limiter's, the same on every store")
def test_a_client_ip_over_its_rate_limit_is_refused(database_url: str, tmp_path: Path) -> None:
    env = {**SERVER_ENV, "THRAD_TAG_IP_RATE_LIMIT_PER_S": "3"}
    server = ServerProcess(database_url, tmp_path / "server.log", env=env)
    try:
        tag_id = new_tag_id()
        register_tag(database_url, "acme", tag_id, "https://shop.example.com")
        headers = {"origin": "https://shop.example.com", "content-type": "text/plain"}
        body = json.dumps({"tag_id": tag_id, "event_name": "page_view"})
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            codes = [
                http.post("/v1/tag/collect", content=body, headers=headers).status_code
                for _ in range(10)
            ]
        assert 429 in codes
        assert codes[0] == 204
    finally:
        server.stop()
