"""uvicorn's httptools protocol, answering what its HTTP parser refuses with our JSON error body.

A request the parser cannot read (a bare CR or a NUL in a header, a malformed Content-Length, a
folded header line) never reaches the app; uvicorn answers it 400 in plain text. Clients parse
every error as JSON, so the same 400 is sent with the contract's error shape instead.
"""

from __future__ import annotations

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from thrad_events.schemas import ErrorBody, ErrorResponse

# Not an Outcome: such a request never reaches an endpoint, so nothing counts it.
BAD_REQUEST_CODE = "bad_request"


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = msgspec.json.encode(
            ErrorResponse(ErrorBody(BAD_REQUEST_CODE, f"malformed HTTP request: {msg}"))
        )
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
