"""http/routing.py: the route table decides every request's endpoint, 404 and 405."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.unit.http.asgi import Reply, call
from thrad_events.http.routing import Route, Router, get, patch, post


def answering(status: int) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


class Fallback:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope["type"])


@pytest.fixture
def router() -> Router:
    return Router(
        [
            post("/v1/api/collect", "/api/collect", app=answering(204)),
            get("/v1/click", app=answering(302)),
            Route(("/both",), ("GET", "POST"), answering(200)),
        ],
        Fallback(),
    )


def request(router: Router, method: str, path: str) -> Reply:
    reply = asyncio.run(call(router, method, path))
    assert reply is not None
    return reply


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/api/collect", 204),
        ("POST", "/api/collect", 204),
        ("GET", "/v1/click", 302),
        ("HEAD", "/v1/click", 302),
        ("GET", "/both", 200),
        ("POST", "/both", 200),
    ],
)
def test_each_path_and_method_of_the_table_reaches_its_endpoint(
    router: Router, method: str, path: str, status: int
) -> None:
    assert request(router, method, path).status == status


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/api/collect", "POST"),
        ("HEAD", "/api/collect", "POST"),
        ("POST", "/v1/click", "GET, HEAD"),
        ("DELETE", "/both", "GET, POST"),
    ],
)
def test_a_method_the_path_does_not_take_is_a_json_405_with_allow(
    router: Router, method: str, path: str, allow: str
) -> None:
    reply = request(router, method, path)
    assert reply.status == 405
    assert reply.headers["allow"] == allow
    assert reply.json()["error"]["code"] == "method_not_allowed"
    assert "x-request-id" in reply.headers


@pytest.mark.parametrize("path", ["/nope", "/v1/api/collect/", "/V1/API/COLLECT", "/"])
def test_any_other_path_is_a_json_404_never_a_redirect(router: Router, path: str) -> None:
    reply = request(router, "POST", path)
    assert reply.status == 404
    assert reply.json()["error"] == {
        "code": "not_found",
        "message": f"no such endpoint: {path}",
        "details": [],
    }
    assert "location" not in reply.headers


def test_what_is_not_an_http_request_goes_to_the_fallback(router: Router) -> None:
    async def nothing() -> dict[str, str]:
        return {}

    async def drop(message: object) -> None:
        return None

    asyncio.run(router({"type": "lifespan"}, nothing, drop))  # type: ignore[arg-type]
    assert isinstance(router.fallback, Fallback)
    assert router.fallback.scopes == ["lifespan"]


def test_a_path_and_method_listed_twice_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="POST /a is in the route table twice"):
        Router([post("/a", app=answering(204)), post("/a", app=answering(200))], Fallback())


def test_one_path_may_take_its_methods_from_several_routes() -> None:
    """GET /v1/admin/partners lists, POST creates: two endpoints on one path."""
    router = Router([post("/a", app=answering(201)), get("/a", app=answering(200))], Fallback())
    assert request(router, "POST", "/a").status == 201
    assert request(router, "GET", "/a").status == 200
    assert request(router, "PUT", "/a").headers["allow"] == "GET, HEAD, POST"


def echoing_params() -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps(scope["path_params"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
def templated() -> Router:
    return Router(
        [
            patch("/v1/admin/keys/{key_id}", app=echoing_params()),
            post("/v1/admin/keys/{key_id}/revoke", app=echoing_params()),
            get("/v1/admin/keys", app=answering(200)),
        ],
        Fallback(),
    )


def test_a_named_segment_reaches_its_endpoint_with_the_segment(templated: Router) -> None:
    reply = request(templated, "PATCH", "/v1/admin/keys/key_0123")
    assert reply.json() == {"key_id": "key_0123"}
    reply = request(templated, "POST", "/v1/admin/keys/key_9/revoke")
    assert reply.json() == {"key_id": "key_9"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/admin/keys/",  # an empty segment names nothing
        "/v1/admin/keys/a/b",  # a segment never spans a slash
        "/v1/admin/keys/a/revoke/x",
    ],
)
def test_a_named_segment_matches_one_whole_segment_only(templated: Router, path: str) -> None:
    assert request(templated, "PATCH", path).status == 404


def test_a_method_a_templated_path_does_not_take_is_a_405_with_allow(templated: Router) -> None:
    reply = request(templated, "GET", "/v1/admin/keys/key_1")
    assert reply.status == 405
    assert reply.headers["allow"] == "PATCH"
    # A plain path wins over a template, and the template itself is no path of the table.
    assert request(templated, "GET", "/v1/admin/keys").status == 200
    assert request(templated, "PATCH", "/v1/admin/keys/{key_id}").status == 200
