"""X-Request-ID: taken from the client when it is a sane token, else minted; echoed back."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thrad_events.logs import request_id, request_id_for


class RequestIdMiddleware:
    """A pure ASGI middleware: cheaper than BaseHTTPMiddleware on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = request_id_for(given)
        header = (b"x-request-id", rid.encode())
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
