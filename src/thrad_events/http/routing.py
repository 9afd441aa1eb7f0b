"""The route table and the dispatch that follows it: one path to every endpoint.

Each route is a path, the methods it takes and its endpoint (a bare ASGI app served through
http/endpoint.py). The router finds a request's endpoint with two dict lookups; a path it does
not know is a JSON 404, a method the path does not take a 405 whose Allow lists the methods the
table gives it. What is not an HTTP request (lifespan) goes to `fallback`.

A path may hold `{name}` segments (`/v1/admin/keys/{key_id}`): those are tried, in order, only
when no plain path matched, and the endpoint finds the segments in `scope["path_params"]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from thrad_events.errors import Outcome
from thrad_events.http.endpoint import Handle, endpoint
from thrad_events.http.errors import Answer, render_error


@dataclass(frozen=True, slots=True)
class Route:
    """`paths` (an endpoint and its aliases) answered by `app` for each of `methods`."""

    paths: tuple[str, ...]
    methods: tuple[str, ...]
    app: ASGIApp


def get(*paths: str, app: ASGIApp) -> Route:
    """A GET route; HEAD is the same request without the body (RFC 9110 9.3.2)."""
    return Route(paths, ("GET", "HEAD"), app)


def post(*paths: str, app: ASGIApp) -> Route:
    return Route(paths, ("POST",), app)


def patch(*paths: str, app: ASGIApp) -> Route:
    return Route(paths, ("PATCH",), app)


_SEGMENT = re.compile(r"\{([a-z_]+)\}")


def _template(path: str) -> re.Pattern[str]:
    """`/a/{name}/b` as a pattern whose group `name` is one non-empty path segment."""
    parts = _SEGMENT.split(path)
    pattern = "".join(
        f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(pattern)


class Router:
    def __init__(self, routes: Iterable[Route], fallback: ASGIApp) -> None:
        table: dict[str, dict[str, ASGIApp]] = {}
        for route in routes:
            for path in route.paths:
                methods = table.setdefault(path, {})
                for method in route.methods:
                    if method in methods:
                        raise ValueError(f"{method} {path} is in the route table twice")
                    methods[method] = route.app
        self.table = table  # every path, templates included: what the API documents
        self.routes = {path: methods for path, methods in table.items() if "{" not in path}
        # Probes of paths and methods are not counted: a scanner would fill the metrics.
        not_allowed = {
            path: endpoint("method_not_allowed", _not_allowed(sorted(methods)), None)
            for path, methods in table.items()
        }
        self.not_allowed = {path: not_allowed[path] for path in self.routes}
        self.templates = [
            (_template(path), methods, not_allowed[path])
            for path, methods in table.items()
            if "{" in path
        ]
        self.not_found = endpoint("not_found", _not_found, None)
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        # Subscripts in a try: cheaper than .get() on the path every event takes.
        try:
            app = self.routes[scope["path"]][scope["method"]]
        except KeyError:
            app = self.not_allowed.get(scope["path"]) or self._match(scope)
        await app(scope, receive, send)

    def _match(self, scope: Scope) -> ASGIApp:
        """The endpoint of the first `{name}` path matching, its segments put in the scope."""
        for pattern, methods, not_allowed in self.templates:
            found = pattern.fullmatch(scope["path"])
            if found is not None:
                scope["path_params"] = found.groupdict()
                return methods.get(scope["method"], not_allowed)
        return self.not_found


def _not_allowed(methods: list[str]) -> Handle:
    answer = (
        Outcome.METHOD_NOT_ALLOWED,
        render_error(
            Outcome.METHOD_NOT_ALLOWED,
            "method not allowed on this path",
            headers=[(b"allow", ", ".join(methods).encode())],
        ),
    )

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        return answer

    return handle


async def _not_found(
    scope: Scope, receive: Receive, headers: dict[str, str]
) -> tuple[Outcome, Answer]:
    message = f"no such endpoint: {scope['path']}"
    return Outcome.NOT_FOUND, render_error(Outcome.NOT_FOUND, message)
