"""/openapi.json says what the server does: its paths are the route table's, its defaults the
code's, and every operation lists the answers of the HTTP edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from thrad_events.app import build_app
from thrad_events.auth.tags import MAX_DAILY_CAP, MAX_ORIGINS
from thrad_events.config import Settings
from thrad_events.http import export
from thrad_events.http.docs_page import ASSET_PREFIX
from thrad_events.http.openapi import build_openapi
from thrad_events.ingest.normalize import DEFAULT_EVENT_TYPE, SERVER_CHANNEL
from thrad_events.reports import query

DOC = build_openapi()
SCHEMAS = DOC["components"]["schemas"]
# The document and the page that renders it describe the API; they are not part of it.
META = {"/openapi.json", "/docs", "/debugger"}  # pages, not API operations
INGEST = ("/v1/api/collect", "/v1/api/conversion", "/v1/api/collect/batch",
          "/v1/api/conversion/batch")  # fmt: skip


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
    ]


def test_every_route_is_documented_and_every_documented_path_is_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = build_app(Settings(database_url=f"sqlite:///{tmp_path / 'thrad.db'}"))
    routed = {
        path: {method.lower() for method in methods if method != "HEAD"}
        for path, methods in app.table.items()
        if path not in META and not path.startswith(ASSET_PREFIX)
    }
    documented = {path: set(item) for path, item in DOC["paths"].items()}
    assert documented == routed


def test_documented_defaults_are_the_codes() -> None:
    conversion = SCHEMAS["ConversionRequest"]["properties"]
    assert conversion["event_type"]["default"] == DEFAULT_EVENT_TYPE
    assert conversion["channel"]["default"] == SERVER_CHANNEL
    assert SCHEMAS["CollectRequest"]["properties"]["channel"]["default"] == SERVER_CHANNEL
    report = {p["name"]: p for p in DOC["paths"]["/v1/api/reports/events"]["get"]["parameters"]}
    assert report["limit"]["schema"]["default"] == query.DEFAULT_LIMIT
    assert report["limit"]["schema"]["maximum"] == query.MAX_LIMIT
    assert report["time_basis"]["schema"]["default"] == query.TimeBasis.EVENT.value
    exported = {p["name"]: p for p in DOC["paths"]["/v1/api/export/events"]["get"]["parameters"]}
    assert exported["limit"]["schema"]["default"] == export.DEFAULT_EXPORT_LIMIT
    assert exported["limit"]["schema"]["maximum"] == export.MAX_EXPORT_LIMIT
    assert set(exported) == set(export.PARAMETERS)


def test_currency_is_documented_in_any_case() -> None:
    currency = SCHEMAS["ConversionRequest"]["properties"]["currency"]
    assert "enum" not in currency
    assert currency["pattern"] == "^[A-Za-z]{3}$"


def test_every_operation_lists_the_answers_of_the_http_edge() -> None:
    for path, method, operation in operations():
        codes = set(operation["responses"])
        assert {"400", "405", "408", "431", "503"} <= codes, (path, method)
        if "requestBody" in operation:
            assert {"413", "415"} <= codes, (path, method)


def test_every_ingest_endpoint_takes_validate_only_and_shows_an_example() -> None:
    for path in INGEST:
        for alias in (path, path.removeprefix("/v1")):
            operation = DOC["paths"][alias]["post"]
            names = [p["name"] for p in operation.get("parameters", [])]
            assert names.count("validate_only") == 1, alias
            assert operation["requestBody"]["content"]["application/json"]["example"]
            assert "200" in operation["responses"]
    conversion = DOC["paths"]["/v1/api/conversion"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in conversion["parameters"]]


def test_report_and_export_times_have_patterns() -> None:
    for path in ("/v1/api/reports/events", "/v1/api/export/events"):
        params = {p["name"]: p for p in DOC["paths"][path]["get"]["parameters"]}
        for name in ("since", "until", "partner_id"):
            assert params[name]["schema"]["pattern"], (path, name)


def test_the_document_names_its_servers() -> None:
    assert DOC["servers"][0]["url"] == "/"
    assert any(server["url"] == "https://events.thrad.ai" for server in DOC["servers"])


def test_every_request_body_shows_an_example() -> None:
    for path, method, operation in operations():
        body = operation.get("requestBody")
        if body is not None:
            for media_type, media in body["content"].items():
                assert "example" in media, (path, method, media_type)


def test_the_tag_registry_is_documented_from_its_structs() -> None:
    registry = DOC["paths"]["/v1/admin/tags"]
    bodies = {
        method: operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for method, operation in registry.items()
        if "requestBody" in operation
    }
    assert bodies == {
        "post": "#/components/schemas/TagCreateRequest",
        "patch": "#/components/schemas/TagUpdateRequest",
    }
    by_path = DOC["paths"]["/v1/admin/tags/{tag_id}"]["patch"]
    assert by_path["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TagChangeRequest"
    )
    assert {"401", "403", "404", "422"} <= set(by_path["responses"])
    assert "409" in registry["post"]["responses"]
    created = SCHEMAS["TagCreateRequest"]
    assert set(created["required"]) == {"partner", "tag_id", "origins"}
    assert created["properties"]["origins"]["maxItems"] == MAX_ORIGINS
    assert created["properties"]["daily_cap"]["anyOf"][0]["maximum"] == MAX_DAILY_CAP
    assert SCHEMAS["TagList"]["required"] == ["tags", "truncated"]
    assert set(SCHEMAS["Tag"]["properties"]) == {
        "tag_id", "partner_id", "partner", "origins", "daily_cap", "created_at",
    }  # fmt: skip
