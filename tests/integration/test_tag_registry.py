"""The browser Tag registry: GET / POST / PATCH /v1/admin/tags (admin token) and `tags` CLI.

Contract: "thrad-events tags create --partner P --tag-id T --origin https://shop.example.com
[--origin ...] (and POST /v1/admin/tags {"partner","tag_id","origins":[...]}), tags list";
"Admin endpoints need Authorization: Bearer <THRAD_ADMIN_TOKEN>; anything else is 401/403."
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    admin_fingerprint,
    cli,
    create_key,
    error_of,
    running_server,
)
from tests.integration.tagging import ADMIN_TOKEN, SERVER_ENV, new_tag_id, register_tag

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FINGERPRINT = admin_fingerprint(ADMIN_TOKEN)


@pytest.fixture(scope="module")
def registry_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("tag-registry")
    with running_server(shared_database_url, tmp / "server.log", env=SERVER_ENV) as process:
        yield process


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


def audit_of(admin: httpx.Client, tag_id: str, since: datetime) -> list[dict[str, Any]]:
    """The audit entries about `tag_id` since `since`, oldest first."""
    answer = admin.get("/v1/admin/audit", params={"since": since.isoformat(), "limit": 1000})
    assert answer.status_code == 200, answer.text
    return [e for e in reversed(answer.json()["entries"]) if e["target"] == tag_id]


def test_a_bad_registration_lists_every_problem_at_once(admin: httpx.Client) -> None:
    body = {
        "partner": "bad\u202epartner",
        "tag_id": "site:shop",
        "origins": ["https://*.a.example", "https://ok.example", "https://b.example/path"],
        "daily_cap": 0,
        "colour": "red",
    }
    error = error_of(admin.post("/v1/admin/tags", json=body), 422, "validation_error")
    found = {d["field"]: d["message"] for d in error["details"]}
    assert set(found) == {"colour", "partner", "tag_id", "origins[0]", "origins[2]", "daily_cap"}
    assert found["colour"] == "unknown field"
    assert "control characters" in found["partner"]
    assert "wildcards" in found["origins[0]"]
    assert "(and 5 more problems)" in error["message"]
    missing = error_of(admin.post("/v1/admin/tags", json={"origins": [7]}), 400, "missing_field")
    assert {d["field"] for d in missing["details"]} == {"partner", "tag_id", "origins[0]"}
    for origins, message in (([], "must not be empty"), (["https://a.example"] * 51, "at most 50")):
        answer = admin.post("/v1/admin/tags", json={**body, "origins": origins})
        details = error_of(answer, 422, "validation_error")["details"]
        assert any(d["field"] == "origins" and message in d["message"] for d in details)
    huge = admin.post("/v1/admin/tags", json={**body, "origins": ["https://a.example"] * 2000})
    error_of(huge, 413, "payload_too_large")


@pytest.mark.parametrize(
    "tag_id", ["tag\nforged-log-line", "x" * 257, "with space", "\u202etag", "", 7]
)
def test_a_tag_id_that_a_page_could_not_send_is_refused(admin: httpx.Client, tag_id: Any) -> None:
    body = {"partner": "acme", "tag_id": tag_id, "origins": ["https://a.example"]}
    error = error_of(admin.post("/v1/admin/tags", json=body), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["tag_id"]


def test_a_tag_is_changed_by_path_or_by_body_and_unknown_ones_are_404(
    admin: httpx.Client,
) -> None:
    tag_id = new_tag_id()
    body = {"partner": "acme", "tag_id": tag_id, "origins": ["https://a.example"], "daily_cap": 9}
    assert admin.post("/v1/admin/tags", json=body).status_code == 201
    by_path = admin.patch(f"/v1/admin/tags/{tag_id}", json={"origins": ["https://B.example"]})
    assert by_path.status_code == 200, by_path.text
    assert (by_path.json()["origins"], by_path.json()["daily_cap"]) == (["https://b.example"], 9)
    by_body = admin.patch("/v1/admin/tags", json={"tag_id": tag_id, "daily_cap": None})
    assert (by_body.json()["origins"], by_body.json()["daily_cap"]) == (["https://b.example"], None)
    for answer in (
        admin.patch("/v1/admin/tags/no-such-tag", json={"daily_cap": 5}),
        admin.patch("/v1/admin/tags/bad%20id", json={"daily_cap": 5}),
        admin.patch("/v1/admin/tags", json={"tag_id": "no-such-tag", "daily_cap": 5}),
    ):
        error_of(answer, 404, "not_found")
    nothing = error_of(admin.patch(f"/v1/admin/tags/{tag_id}", json={}), 422, "validation_error")
    assert "nothing to change" in nothing["message"]
    renamed = admin.patch(f"/v1/admin/tags/{tag_id}", json={"tag_id": "other", "daily_cap": 1})
    assert error_of(renamed, 422, "validation_error")["details"][0]["field"] == "tag_id"
    bad = admin.patch(f"/v1/admin/tags/{tag_id}", json={"origins": "https://a.example"})
    assert error_of(bad, 422, "validation_error")["details"][0] == {
        "field": "origins",
        "message": "must be an array",
    }


def test_a_taken_tag_id_is_a_409_and_leaves_nothing_behind(admin: httpx.Client) -> None:
    """The registration, its new partner and its audit entry commit together or not at all."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    tag_id = new_tag_id()
    first = {"partner": "acme", "tag_id": tag_id, "origins": ["https://a.example"]}
    assert admin.post("/v1/admin/tags", json=first).status_code == 201
    newcomer = "newcomer-" + tag_id
    taken = admin.post("/v1/admin/tags", json={**first, "partner": newcomer})
    assert error_of(taken, 409, "conflict")["details"][0]["field"] == "tag_id"
    partners = admin.get("/v1/admin/partners", params={"limit": 1000}).json()["partners"]
    assert newcomer not in [p["name"] for p in partners]
    assert [e["action"] for e in audit_of(admin, tag_id, since)] == ["tag.create"]


def test_the_list_is_bounded_like_the_other_admin_lists(admin: httpx.Client) -> None:
    partner = "lister-" + new_tag_id()
    made = [new_tag_id() for _ in range(3)]
    for tag_id in made:
        body = {"partner": partner, "tag_id": tag_id, "origins": ["https://l.example"]}
        assert admin.post("/v1/admin/tags", json=body).status_code == 201
    every = admin.get("/v1/admin/tags", params={"partner": partner}).json()
    assert ([t["tag_id"] for t in every["tags"]], every["truncated"]) == (sorted(made), False)
    partner_id = every["tags"][0]["partner_id"]
    first = admin.get("/v1/admin/tags", params={"partner": partner_id, "limit": 2}).json()
    assert ([t["tag_id"] for t in first["tags"]], first["truncated"]) == (sorted(made)[:2], True)
    for query, field in (
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1&limit=2", "limit"),
        ("colour=red", "colour"),
        ("partner=no-such-partner-anywhere", "partner"),
        ("partner=%01", "partner"),
    ):
        error = error_of(admin.get(f"/v1/admin/tags?{query}"), 422, "validation_error")
        assert error["details"][0]["field"] == field, query
    assert admin.post("/v1/admin/tags?colour=red", json={}).status_code == 422


def test_every_registry_change_is_on_the_audit_trail(
    admin: httpx.Client, registry_server: ServerProcess
) -> None:
    """tag.create and tag.update, over HTTP (the token's fingerprint) and from the CLI (cli),
    in GET /v1/admin/audit and in `thrad-events audit`."""
    url, since = registry_server.database_url, datetime.now(UTC) - timedelta(seconds=1)
    over_http, from_cli = new_tag_id(), new_tag_id()
    body = {"partner": "acme", "tag_id": over_http, "origins": ["https://h.example"]}
    created = admin.post("/v1/admin/tags", json={**body, "daily_cap": 100}).json()
    admin.patch(f"/v1/admin/tags/{over_http}", json={"daily_cap": None}).raise_for_status()
    admin.patch("/v1/admin/tags", json={"tag_id": over_http, "origins": ["https://i.example"]})
    register_tag(url, "globex", from_cli, "https://c.example")
    cli(url, "tags", "update", from_cli, "--daily-cap", "7", env=SERVER_ENV)
    partner_id = created["partner_id"]
    trail = [(e["actor"], e["action"], e["details"]) for e in audit_of(admin, over_http, since)]
    assert trail == [
        (
            FINGERPRINT,
            "tag.create",
            {"partner_id": partner_id, "origins": ["https://h.example"], "daily_cap": 100},
        ),
        (FINGERPRINT, "tag.update", {"partner_id": partner_id, "daily_cap": None}),
        (FINGERPRINT, "tag.update", {"partner_id": partner_id, "origins": ["https://i.example"]}),
    ]
    shell = [
        json.loads(line) for line in cli(url, "audit", "--json", "--limit", "1000").splitlines()
    ]
    mine = [(e["actor"], e["action"]) for e in reversed(shell) if e["target"] == from_cli]
    assert mine == [("cli", "tag.create"), ("cli", "tag.update")]
    [update] = [e for e in shell if e["target"] == from_cli and e["action"] == "tag.update"]
    assert update["details"]["daily_cap"] == 7
    table = cli(url, "audit", "--limit", "1000")
    assert any(line.split()[1:4] == ["cli", "tag.create", from_cli] for line in table.splitlines())
    failed = admin.post("/v1/admin/tags", json=body)
    assert failed.status_code == 409
    assert len(audit_of(admin, over_http, since)) == 3, "a refused change is not recorded"


@pytest.mark.sqlite_only("the per-IP limit is the limiter's, the same on every store")
def test_a_client_ip_over_its_rate_limit_is_refused(database_url: str, tmp_path: Path) -> None:
    env = {**SERVER_ENV, "THRAD_TAG_IP_RATE_LIMIT_PER_S": "3"}
    with running_server(database_url, tmp_path / "server.log", env=env) as server:
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


@pytest.mark.sqlite_only("the per-tag limit is the limiter's, the same on every store")
def test_a_tag_over_its_rate_limit_is_refused_and_other_tags_are_not(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **SERVER_ENV,
        "THRAD_TAG_RATE_LIMIT_PER_S": "3",
        "THRAD_TAG_IP_RATE_LIMIT_PER_S": "1000",
    }
    with running_server(database_url, tmp_path / "server.log", env=env) as server:
        busy, quiet = new_tag_id(), new_tag_id()
        for tag_id in (busy, quiet):
            register_tag(database_url, "acme", tag_id, "https://shop.example.com")
        headers = {"origin": "https://shop.example.com", "content-type": "text/plain"}

        def send(tag_id: str) -> httpx.Response:
            body = json.dumps({"tag_id": tag_id, "event_name": "page_view"})
            return http.post("/v1/tag/collect", content=body, headers=headers)

        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            answers = [send(busy) for _ in range(10)]
            other = send(quiet)
    codes = [answer.status_code for answer in answers]
    assert codes[:3] == [204, 204, 204]
    assert 429 in codes
    refused = answers[codes.index(429)]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    # The limit is the tag's: the same client, on another tag, is let in.
    assert other.status_code == 204


@pytest.mark.sqlite_only("the per-IP limit is the limiter's, the same on every store")
def test_preflights_count_against_the_client_ips_rate_limit(
    database_url: str, tmp_path: Path
) -> None:
    """Each preflight from an origin nobody registered is a lookup in the store: a flood of
    made-up origins is held to the client IP's limit like any other request."""
    env = {**SERVER_ENV, "THRAD_TAG_IP_RATE_LIMIT_PER_S": "3"}
    with (
        running_server(database_url, tmp_path / "server.log", env=env) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        answers = [
            http.options(
                "/v1/tag/collect",
                headers={
                    "origin": f"https://{new_tag_id().replace('_', '-')}.example.com",
                    "access-control-request-method": "POST",
                },
            )
            for _ in range(10)
        ]
    codes = [answer.status_code for answer in answers]
    assert codes[0] == 403
    assert 429 in codes
    assert answers[codes.index(429)].json()["error"]["code"] == "rate_limited"
