"""The admin API through the real server, on SQLite and PostgreSQL: partners, keys, rotation,
revocation and the audit trail, and who may use it.

Contract: "Admin endpoints need Authorization: Bearer <THRAD_ADMIN_TOKEN>; anything else is
401/403", the /v1/admin/ table (partners 409 if it exists; keys without secrets; the secret shown
once as api_key; PATCH 404 unknown, 409 revoked; revoke refused everywhere within 5 s; rotate
with grace_seconds; audit of every admin action, HTTP or CLI, actor a token fingerprint or cli).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    admin_fingerprint,
    api_client,
    clean_env,
    cli,
    create_key,
    error_of,
    free_port,
    running_server,
    unique_name,
)
from tests.postgres import postgres_schema

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
FINGERPRINT = admin_fingerprint(ADMIN_TOKEN)
REVOCATION_BOUND_S = 5.0
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def admin_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("admin")
    env = {"THRAD_ADMIN_TOKEN": ADMIN_TOKEN}
    with running_server(shared_database_url, tmp / "server.log", env=env) as process:
        yield process
    assert ADMIN_TOKEN not in process.log(), "the admin token was logged"


@pytest.fixture
def admin(admin_server: ServerProcess) -> Iterator[httpx.Client]:
    with (
        admin_server.logs_no_new_errors(),
        httpx.Client(
            base_url=admin_server.base_url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        ) as http,
    ):
        yield http


def new_partner(admin: httpx.Client) -> dict[str, Any]:
    answer = admin.post("/v1/admin/partners", json={"name": unique_name("partner")})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def new_key(admin: httpx.Client, partner: str, **fields: Any) -> dict[str, Any]:
    answer = admin.post("/v1/admin/keys", json={"partner": partner, "label": "prod", **fields})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def collect(base_url: str, api_key: str) -> int:
    answer = httpx.post(
        f"{base_url}/v1/api/collect",
        json={"event_name": "page_view"},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    return answer.status_code


def test_a_test_key_made_over_http_is_a_test_key_and_stays_one_when_rotated(
    admin: httpx.Client, admin_server: ServerProcess
) -> None:
    partner = new_partner(admin)
    key = new_key(admin, partner["name"], test=True)
    assert key["api_key"].startswith("thr_test_")
    assert key["test"] is True
    assert collect(admin_server.base_url, key["api_key"]) == 204
    rotated = admin.post(f"/v1/admin/keys/{key['key_id']}/rotate", json={})
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["api_key"].startswith("thr_test_")
    listed = admin.get("/v1/admin/keys", params={"partner": partner["partner_id"]}).json()["keys"]
    assert [k["test"] for k in listed] == [True, True]
    assert (
        admin.post(
            "/v1/admin/keys", json={"partner": partner["name"], "label": "x", "test": "yes"}
        ).status_code
        == 422
    )


def wait_refused(base_url: str, api_key: str, started: float | None = None) -> float:
    """Seconds from `started` (now) until a request with the key is refused (401); polls,
    bounded by twice the bound."""
    started = time.monotonic() if started is None else started
    while time.monotonic() - started < 2 * REVOCATION_BOUND_S:
        if collect(base_url, api_key) == 401:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("the key is still accepted")


def audit(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = admin.get("/v1/admin/audit", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["entries"])


# -- partners -----------------------------------------------------------------------------------


def test_a_partner_is_created_once_and_listed(admin: httpx.Client) -> None:
    made = new_partner(admin)
    assert made["partner_id"].startswith("ptn_")
    again = admin.post("/v1/admin/partners", json={"name": made["name"]})
    error_of(again, 409, "conflict")
    listed = admin.get("/v1/admin/partners", params={"limit": 1000}).json()
    assert {"partner_id": made["partner_id"], "name": made["name"]}.items() <= next(
        p for p in listed["partners"] if p["partner_id"] == made["partner_id"]
    ).items()


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({}, {"name": "required field is missing"}),
        ({"name": ""}, {"name": "must not be empty"}),
        ({"name": "   "}, {"name": "must not be empty or blank"}),
        ({"name": "x" * 129}, {"name": "must be at most 128 characters"}),
        ({"name": "evil\x1b[31m"}, {"name": "must not contain control characters"}),
        ({"name": "rtl\u202eevil"}, {"name": "must not contain control characters"}),
        ({"name": 7, "role": "x"}, {"role": "unknown field", "name": "must be a string"}),
    ],
)
def test_a_bad_partner_body_lists_every_problem(
    admin: httpx.Client, body: dict[str, Any], problems: dict[str, str]
) -> None:
    answer = admin.post("/v1/admin/partners", json=body)
    status, code = (400, "missing_field") if body == {} else (422, "validation_error")
    error = error_of(answer, status, code)
    assert {d["field"]: d["message"] for d in error["details"]} == problems


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[1]", "must be a JSON object, not an array"),
        (b'{"name": "\xff"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, ""),
    ],
)
def test_a_body_that_is_no_json_object_is_a_400(
    admin: httpx.Client, content: bytes, message: str
) -> None:
    error = error_of(admin.post("/v1/admin/partners", content=content), 400, "invalid_json")
    assert message in error["message"]


def test_a_body_over_16_kib_is_a_413(admin: httpx.Client) -> None:
    answer = admin.post("/v1/admin/partners", json={"name": "x" * 20_000})
    error_of(answer, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1&limit=2", "limit"),
        ("offset=5", "offset"),
    ],
)
def test_list_parameters_are_bounded_and_known(admin: httpx.Client, query: str, field: str) -> None:
    for path in ("/v1/admin/partners", "/v1/admin/keys", "/v1/admin/audit"):
        error = error_of(admin.get(f"{path}?{query}"), 422, "validation_error")
        assert error["details"][0]["field"] == field


# -- keys ---------------------------------------------------------------------------------------


def test_a_key_made_over_http_works_and_is_listed_without_its_secret(
    admin: httpx.Client, admin_server: ServerProcess
) -> None:
    partner = new_partner(admin)
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    key = new_key(admin, partner["name"], rate_limit=50, expires_at=expires.isoformat())
    assert key["api_key"].startswith("thr_")
    assert key["partner_id"] == partner["partner_id"]
    assert key["status"] == "active"
    assert key["rate_limit"] == 50
    assert key["test"] is False
    assert key["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert collect(admin_server.base_url, key["api_key"]) == 204
    # By id or by name, the partner's keys only, and never a secret.
    for ref in (partner["partner_id"], partner["name"]):
        answer = admin.get("/v1/admin/keys", params={"partner": ref})
        assert answer.status_code == 200
        [listed] = answer.json()["keys"]
        assert listed["key_id"] == key["key_id"]
        assert key["api_key"] not in answer.text
        assert key["api_key"][4:20] not in answer.text
        assert set(listed) == {
            "key_id",
            "partner_id",
            "label",
            "key_prefix",
            "status",
            "test",
            "rate_limit",
            "expires_at",
            "created_at",
            "revoked_at",
            "last_used_at",
        }
    deadline = time.monotonic() + REVOCATION_BOUND_S
    while listed["last_used_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the mark is written behind the request, by the writer
        [listed] = admin.get("/v1/admin/keys", params={"partner": ref}).json()["keys"]
    assert listed["last_used_at"] is not None, "an accepted request marks the key used"


@pytest.mark.parametrize("listing", ["/v1/admin/keys", "/v1/admin/tags"])
def test_a_listing_of_a_partner_nobody_is_a_422_not_an_empty_list(
    admin: httpx.Client, listing: str
) -> None:
    new_partner(admin)
    answer = admin.get(listing, params={"partner": "nobody-at-all"})
    error = error_of(answer, 422, "validation_error")
    assert error["details"] == [{"field": "partner", "message": "no partner has this id or name"}]


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"partner": "nobody-at-all"}, {"partner": "no partner has this id or name"}),
        ({"expires_at": "2001-01-01T00:00:00Z"}, {"expires_at": "is already past"}),
        ({"expires_at": "next tuesday"}, {"expires_at": "must be an ISO-8601 date-time"}),
        ({"rate_limit": 1_000_001}, {"rate_limit": "must be from 0 to 1000000"}),
        ({"rate_limit": True}, {"rate_limit": "must be a whole number"}),
        ({"label": "", "test_mode": 1}, {"label": "must not be empty", "test_mode": ""}),
    ],
)
def test_a_bad_key_body_is_a_422_naming_each_field(
    admin: httpx.Client, fields: dict[str, Any], problems: dict[str, str]
) -> None:
    partner = new_partner(admin)
    body = {"partner": partner["name"], "label": "prod", **fields}
    error = error_of(admin.post("/v1/admin/keys", json=body), 422, "validation_error")
    found = {d["field"]: d["message"] for d in error["details"]}
    assert set(found) == set(problems)
    for field, message in problems.items():
        assert message in found[field]


def test_patch_changes_a_key_404s_an_unknown_one_and_409s_a_revoked_one(
    admin: httpx.Client,
) -> None:
    key = new_key(admin, new_partner(admin)["name"])
    path = f"/v1/admin/keys/{key['key_id']}"
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    answer = admin.patch(path, json={"label": "backend", "rate_limit": 7, "expires_at": expires})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["label"], answer.json()["rate_limit"]) == ("backend", 7)
    assert admin.patch(path, json={"rate_limit": 0}).json()["rate_limit"] is None
    error_of(admin.patch(path, json={}), 422, "validation_error")
    error_of(admin.patch(path, json={"key_hash": "x"}), 422, "validation_error")
    error_of(
        admin.patch("/v1/admin/keys/key_0000000000000000", json={"label": "x"}), 404, "not_found"
    )
    error_of(admin.patch("/v1/admin/keys/%00%0a", json={"label": "x"}), 404, "not_found")
    assert admin.post(f"{path}/revoke").status_code == 200
    error_of(admin.patch(path, json={"label": "again"}), 409, "conflict")


def test_a_key_revoked_over_http_is_refused_within_5_s(
    admin: httpx.Client, admin_server: ServerProcess
) -> None:
    key = new_key(admin, new_partner(admin)["name"])
    assert collect(admin_server.base_url, key["api_key"]) == 204
    answer = admin.post(f"/v1/admin/keys/{key['key_id']}/revoke")
    assert answer.status_code == 200
    assert answer.json()["status"] == "revoked"
    assert wait_refused(admin_server.base_url, key["api_key"]) < REVOCATION_BOUND_S
    # Again: nothing changes, and the trail has one revocation.
    assert admin.post(f"/v1/admin/keys/{key['key_id']}/revoke").status_code == 200
    revocations = [e for e in audit(admin, limit=1000) if e["target"] == key["key_id"]]
    assert [e["action"] for e in revocations] == ["key.revoke", "key.create"]
    error_of(admin.post("/v1/admin/keys/key_unknown/revoke"), 404, "not_found")


def test_rotation_gives_a_new_key_and_the_old_one_works_for_the_grace_period(
    admin: httpx.Client, admin_server: ServerProcess
) -> None:
    expires = datetime.now(UTC) + timedelta(days=10)
    old = new_key(admin, new_partner(admin)["name"], rate_limit=9, expires_at=expires.isoformat())
    before = datetime.now(UTC)
    answer = admin.post(f"/v1/admin/keys/{old['key_id']}/rotate", json={"grace_seconds": 3600})
    assert answer.status_code == 201, answer.text
    new = answer.json()
    assert new["key_id"] != old["key_id"]
    assert new["api_key"] != old["api_key"]
    for field in ("partner_id", "label", "rate_limit", "expires_at"):
        assert new[field] == old[field], field
    old_expiry = datetime.fromisoformat(new["rotated_from"]["expires_at"])
    assert (
        before + timedelta(seconds=3600)
        <= old_expiry
        <= datetime.now(UTC) + timedelta(seconds=3600)
    )
    assert collect(admin_server.base_url, new["api_key"]) == 204
    assert collect(admin_server.base_url, old["api_key"]) == 204
    [entry] = [
        e for e in audit(admin) if e["action"] == "key.rotate" and e["target"] == old["key_id"]
    ]
    assert entry["details"]["new_key_id"] == new["key_id"]
    assert entry["details"]["grace_seconds"] == 3600


def test_rotation_never_extends_a_key_and_grace_0_expires_it_at_once(
    admin: httpx.Client, admin_server: ServerProcess
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    old = new_key(admin, new_partner(admin)["name"], expires_at=expires.isoformat())
    longer = admin.post(f"/v1/admin/keys/{old['key_id']}/rotate", json={"grace_seconds": 86400})
    assert longer.json()["rotated_from"]["expires_at"] == old["expires_at"]
    newer = longer.json()
    assert collect(admin_server.base_url, newer["api_key"]) == 204
    now = admin.post(f"/v1/admin/keys/{newer['key_id']}/rotate", json={"grace_seconds": 0})
    assert now.status_code == 201
    assert now.json()["rotated_from"]["status"] == "expired"
    assert wait_refused(admin_server.base_url, newer["api_key"]) < REVOCATION_BOUND_S
    assert collect(admin_server.base_url, now.json()["api_key"]) == 204
    # An expired or revoked key is not rotated again.
    error_of(admin.post(f"/v1/admin/keys/{newer['key_id']}/rotate"), 409, "conflict")
    admin.post(f"/v1/admin/keys/{old['key_id']}/revoke")
    error_of(admin.post(f"/v1/admin/keys/{old['key_id']}/rotate"), 409, "conflict")


@pytest.mark.parametrize("grace", [-1, 90 * 86400 + 1, 1.5, "60"])
def test_grace_seconds_is_bounded(admin: httpx.Client, grace: Any) -> None:
    key = new_key(admin, new_partner(admin)["name"])
    answer = admin.post(f"/v1/admin/keys/{key['key_id']}/rotate", json={"grace_seconds": grace})
    error = error_of(answer, 422, "validation_error")
    assert error["details"][0]["field"] == "grace_seconds"


def test_rotation_defaults_to_a_day_of_grace(admin: httpx.Client) -> None:
    key = new_key(admin, new_partner(admin)["name"])
    answer = admin.post(f"/v1/admin/keys/{key['key_id']}/rotate")
    assert answer.status_code == 201, answer.text
    old_expiry = datetime.fromisoformat(answer.json()["rotated_from"]["expires_at"])
    assert timedelta(hours=23) < old_expiry - datetime.now(UTC) <= timedelta(days=1)


# -- the audit trail ----------------------------------------------------------------------------


def test_every_action_over_http_and_the_cli_is_on_the_record(
    admin: httpx.Client, admin_server: ServerProcess
) -> None:
    url = admin_server.database_url
    started = datetime.now(UTC) - timedelta(seconds=1)
    partner = new_partner(admin)
    key = new_key(admin, partner["partner_id"])
    admin.patch(f"/v1/admin/keys/{key['key_id']}", json={"label": "renamed"})
    rotated = admin.post(f"/v1/admin/keys/{key['key_id']}/rotate").json()
    admin.post(f"/v1/admin/keys/{rotated['key_id']}/revoke")
    cli_partner = unique_name("cli-partner")
    cli_key = create_key(url, cli_partner, "from-the-shell")
    cli(url, "keys", "update", cli_key["key_id"], "--rate-limit", "5")
    cli(url, "keys", "rotate", cli_key["key_id"], "--grace-seconds", "10")
    cli(url, "keys", "revoke", cli_key["key_id"])

    entries = audit(admin, since=started.isoformat(), limit=1000)
    mine = [
        (e["actor"], e["action"], e["target"])
        for e in reversed(entries)
        if e["target"] in (partner["partner_id"], key["key_id"], rotated["key_id"])
        or e["target"] == cli_key["key_id"]
        or e["target"] == cli_key["partner_id"]
    ]
    assert mine == [
        (FINGERPRINT, "partner.create", partner["partner_id"]),
        (FINGERPRINT, "key.create", key["key_id"]),
        (FINGERPRINT, "key.update", key["key_id"]),
        (FINGERPRINT, "key.rotate", key["key_id"]),
        (FINGERPRINT, "key.revoke", rotated["key_id"]),
        ("cli", "partner.create", cli_key["partner_id"]),
        ("cli", "key.create", cli_key["key_id"]),
        ("cli", "key.update", cli_key["key_id"]),
        ("cli", "key.rotate", cli_key["key_id"]),
        ("cli", "key.revoke", cli_key["key_id"]),
    ]
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True), "newest first"
    text = json.dumps(entries)
    assert ADMIN_TOKEN not in text
    assert key["api_key"] not in text
    assert cli_key["api_key"] not in text
    assert len(audit(admin, since=started.isoformat(), limit=2)) == 2
    assert audit(admin, since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    error_of(admin.get("/v1/admin/audit", params={"since": "yesterday"}), 422, "validation_error")


def test_the_audit_command_prints_a_header_row_or_json_lines(admin_server: ServerProcess) -> None:
    url = admin_server.database_url
    key = create_key(url, unique_name("audit-cli"), "k")
    table = cli(url, "audit", "--limit", "5").splitlines()
    assert table[0].split() == ["TIME", "ACTOR", "ACTION", "TARGET", "DETAILS"]
    assert any(key["key_id"] in line and " cli " in line for line in table[1:])
    lines = [json.loads(line) for line in cli(url, "audit", "--json", "--limit", "5").splitlines()]
    assert len(lines) <= 5
    [created] = [e for e in lines if e["target"] == key["key_id"]]
    assert (created["actor"], created["action"]) == ("cli", "key.create")
    since = cli(url, "audit", "--json", "--since", "2999-01-01T00:00:00Z")
    assert since == ""


def test_every_listing_command_takes_json(admin: httpx.Client, admin_server: ServerProcess) -> None:
    """What an operator made over HTTP, listed by each listing command with --json: one JSON
    object per line (a report and the rejections: the HTTP endpoint's one JSON object)."""
    url = admin_server.database_url
    partner = new_partner(admin)
    key = new_key(admin, partner["name"])
    tag_id = unique_name("tag")
    body = {"partner": partner["name"], "tag_id": tag_id, "origins": ["https://shop.example"]}
    assert admin.post("/v1/admin/tags", json=body).status_code == 201

    def lines(*command: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in cli(url, *command, "--json").splitlines()]

    assert partner["partner_id"] in {p["partner_id"] for p in lines("partners", "list")}
    assert key["key_id"] in {k["key_id"] for k in lines("keys", "list")}
    assert tag_id in {t["tag_id"] for t in lines("tags", "list")}
    assert key["key_id"] in {e["target"] for e in lines("audit", "--limit", "1000")}
    [rejections] = lines("rejections", "--partner", partner["name"])
    assert rejections["partner_id"] == partner["partner_id"]
    assert rejections["rejections"] == []
    [report] = lines("report", "events", "--partner", partner["name"])
    assert report["report"] == "events"
    assert report["partner_id"] == partner["partner_id"]
    assert report["rows"] == [{"events": 0}]


# -- who may use it -----------------------------------------------------------------------------


def test_a_wrong_or_missing_token_is_a_401_and_an_api_key_a_403(
    admin_server: ServerProcess, admin: httpx.Client
) -> None:
    base = admin_server.base_url
    key = new_key(admin, new_partner(admin)["name"])
    for headers in (
        {},
        {"Authorization": "Bearer " + ADMIN_TOKEN[:-1]},
        {"Authorization": ADMIN_TOKEN},
    ):
        answer = httpx.get(f"{base}/v1/admin/partners", headers=headers)
        error_of(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    basic = httpx.get(f"{base}/v1/admin/partners", headers={"Authorization": "Basic dTpw"})
    assert error_of(basic, 401, "unauthorized")["message"] == (
        "Authorization must be 'Bearer <admin token>'"
    )
    partner_key = {"Authorization": f"Bearer {key['api_key']}"}
    for method, path in (
        ("GET", "/v1/admin/keys"),
        ("POST", "/v1/admin/partners"),
        ("POST", "/v1/admin/tags"),
    ):
        answer = httpx.request(method, f"{base}{path}", headers=partner_key, json={"name": "x"})
        error_of(answer, 403, "forbidden")
    [listed] = admin.get("/v1/admin/keys", params={"partner": key["partner_id"]}).json()["keys"]
    assert listed["last_used_at"] is None, "a refused admin request is no use of the key"


@pytest.mark.parametrize(
    "token",
    [
        "fifteen-chars-x",  # too short to resist guessing over HTTP
        "a-token-from-a-file-0123456789\n",  # a trailing newline
        "an admin token with spaces",
        "\tan-admin-token-0123456789",
        "ein-schlüssel-für-admins-0123",  # not ASCII: no header carries it as written
    ],
)
def test_serve_refuses_an_admin_token_no_request_could_present(
    database_url: str, token: str
) -> None:
    """Start-up refuses, naming the variable, a token shorter than 16 characters and one that no
    `Authorization: Bearer` header could carry as it is (whitespace is stripped from a header,
    a space ends the token, and header bytes are not UTF-8 text), instead of serving an admin API
    that refuses every request."""
    done = subprocess.run(
        [sys.executable, "-m", "thrad_events", "serve", "--port", str(free_port())],
        env=clean_env(database_url, {"THRAD_ADMIN_TOKEN": token}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "THRAD_ADMIN_TOKEN" in done.stderr
    assert token.strip() not in done.stderr + done.stdout


def test_without_an_admin_token_the_admin_api_is_off(shared_client: httpx.Client) -> None:
    """The module's plain server has no THRAD_ADMIN_TOKEN: 403, saying what to set."""
    for method, path in (
        ("GET", "/v1/admin/partners"),
        ("POST", "/v1/admin/keys"),
        ("POST", "/v1/admin/keys/key_1/revoke"),
        ("GET", "/v1/admin/audit"),
        ("GET", "/v1/admin/tags"),
        ("POST", "/v1/admin/tags"),
        ("PATCH", "/v1/admin/tags"),
        ("PATCH", "/v1/admin/tags/acme-shop"),
    ):
        answer = shared_client.request(
            method, path, headers={"Authorization": "Bearer " + "x" * 20}
        )
        error = error_of(answer, 403, "forbidden")
        assert "THRAD_ADMIN_TOKEN" in error["message"]


def test_the_admin_api_is_in_the_openapi_document(admin_server: ServerProcess) -> None:
    paths = httpx.get(f"{admin_server.base_url}/openapi.json").json()["paths"]
    assert set(paths["/v1/admin/partners"]) == {"get", "post"}
    assert set(paths["/v1/admin/keys"]) == {"get", "post"}
    assert set(paths["/v1/admin/keys/{key_id}"]) == {"patch"}
    for path in ("/v1/admin/keys/{key_id}/revoke", "/v1/admin/keys/{key_id}/rotate"):
        assert set(paths[path]) == {"post"}
    assert set(paths["/v1/admin/audit"]) == {"get"}
    assert set(paths["/v1/admin/tags"]) == {"get", "post", "patch"}
    assert set(paths["/v1/admin/tags/{tag_id}"]) == {"patch"}


@pytest.mark.long
def test_a_revocation_or_rotation_through_one_node_holds_on_another_within_5_s(
    tmp_path: Path,
) -> None:
    """Two nodes on one PostgreSQL schema: keys revoked, or rotated with no grace, through the
    first are refused by the second (which had just let them in) within 5 s."""
    env = {"THRAD_ADMIN_TOKEN": ADMIN_TOKEN}
    with (
        postgres_schema() as url,
        running_server(url, tmp_path / "a.log", env=env) as first,
        running_server(url, tmp_path / "b.log", env=env) as second,
        api_client(first, ADMIN_TOKEN) as admin,
    ):
        partner = new_partner(admin)["name"]
        revoked, rotated = new_key(admin, partner), new_key(admin, partner)
        for node in (first, second):
            for key in (revoked, rotated):
                assert collect(node.base_url, key["api_key"]) == 204
        acted = time.monotonic()
        admin.post(f"/v1/admin/keys/{revoked['key_id']}/revoke").raise_for_status()
        answer = admin.post(f"/v1/admin/keys/{rotated['key_id']}/rotate", json={"grace_seconds": 0})
        assert answer.status_code == 201
        for key in (revoked, rotated):
            assert wait_refused(second.base_url, key["api_key"], acted) < 5
        assert collect(second.base_url, answer.json()["api_key"]) == 204


# -- the README's walkthrough, as written -------------------------------------------------------


def operating_walkthrough() -> str:
    section = README.read_text().split("## Operating", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    [walkthrough] = [block for block in blocks if block.startswith("BASE=")]
    return walkthrough


def test_the_readme_operating_walkthrough_runs_as_written(
    database_url: str, tmp_path: Path
) -> None:
    """README "Operating": partner -> key -> rotate -> revoke -> audit with curl, every command
    run by bash (curl -f: any HTTP error fails it) against a fresh server."""
    env = {"THRAD_ADMIN_TOKEN": ADMIN_TOKEN}
    with running_server(database_url, tmp_path / "server.log", env=env) as server:
        script = operating_walkthrough().replace(
            "BASE=http://127.0.0.1:8080", f"BASE={server.base_url}"
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=clean_env(database_url, env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert "revoked" in lines
    trail = [line.split("\t") for line in lines if "\t" in line]
    operator = [row[2] for row in trail if row[1] == FINGERPRINT]
    assert operator == ["key.revoke", "key.rotate", "key.create", "partner.create"]
    # The rest is the first start's dev partner and key, recorded as the command line's.
    assert [row[1:3] for row in trail[len(operator) :]] == [
        ["cli", "key.create"],
        ["cli", "partner.create"],
    ]
