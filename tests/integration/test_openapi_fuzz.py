"""Schemathesis against the running server: every documented endpoint, valid and invalid input.

Contract: "Never a 500 with a stack trace for anything a client can send", and GET /openapi.json
is "the OpenAPI document of every public endpoint": each answer must be a status, content type
and body that the document declares for that operation. The budget is small and derandomized so
that the run is reproducible and fits inside `make test`.
"""

from __future__ import annotations

import itertools
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.server import ServerProcess, create_key, real_click

pytestmark = pytest.mark.long

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def api_schema(
    request: pytest.FixtureRequest, server: ServerProcess, database_url: str
) -> schemathesis.BaseSchema:
    """The server's own /openapi.json, called with a valid key that never hits its rate limit."""
    # schemathesis' lazy loader renames the test node per operation through `_nodeid`, which
    # pytest 9 replaced with `_id`; give it the attribute so it reports instead of crashing.
    request.node._nodeid = request.node.nodeid
    key = create_key(database_url, "fuzz", "fuzz", "--rate-limit", "1000000")
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", timeout=10)
    schema.config.update(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key['api_key']}"},
        request_timeout=10,
    )
    schema.config.generation.update(database="none")
    return schema


@pytest.fixture
def click_id(server: ServerProcess) -> str:
    return real_click(server)


schema = schemathesis.pytest.from_fixture("api_schema")


# Every other generated conversion gets a real click (the order of cases is derandomized).
_KNOWN_CLICK = itertools.cycle([True, False])


def _with_known_click(body: Any, click_id: str) -> None:
    """Point half of the generated conversions at a real click, so that besides the 404 of an
    unknown click the fuzzing also reaches storage, dedupe and the 200 answers."""
    items = body.get("conversions") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else [body]:
        wanted = isinstance(item, dict) and isinstance(item.get("click_id"), str)
        if wanted and next(_KNOWN_CLICK):
            item["click_id"] = click_id


# The endpoints that take partners' bodies get the larger budget; the unversioned aliases
# (/api/...) are the same endpoints (test_collect and test_conversion send to both).
INGEST = r"^/v1/(api/(collect|conversion)(/batch)?|api/test/clicks|tag/(collect|conversion))$"
SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(hypothesis.HealthCheck),
}


@schema.include(path_regex=INGEST).parametrize()
@hypothesis.settings(max_examples=15, **SETTINGS)
def test_every_ingest_endpoint_conforms_to_its_openapi_document(
    case: schemathesis.Case[Any], click_id: str
) -> None:
    _with_known_click(case.body, click_id)
    case.call_and_validate(checks=CHECKS)


# The debugger's stream stays open until the client leaves: there is no answer to check.
@(
    schema.exclude(path_regex=INGEST)
    .exclude(path_regex="^/api/")
    .exclude(path="/v1/api/debug/stream")
    .parametrize()
)
@hypothesis.settings(max_examples=5, **SETTINGS)
def test_every_other_public_endpoint_conforms_to_its_openapi_document(
    case: schemathesis.Case[Any],
) -> None:
    case.call_and_validate(checks=CHECKS)
