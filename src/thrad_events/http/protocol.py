"""uvicorn's httptools protocol with the limits of the HTTP edge, every refusal in our JSON shape.

What never reaches the app is refused here, with the body of http/errors.py and the connection
closed after it:

- HTTP the parser cannot read (a bare CR or a NUL in a header, a malformed Content-Length, a
  folded header line): 400 `bad_request` (uvicorn would answer it in plain text);
- a request head (request line and headers) over 64 KiB or over 100 header lines: 431
  `request_header_fields_too_large`, without buffering much more than the cap;
- a head not whole within the header timeout of the connection opening or of the previous
  response (slowloris): 408 `request_timeout`; a connection that sent nothing is closed by the
  keep-alive timeout instead, which uvicorn arms after each response and we also on connect;
- a request on a connection past the per-worker cap: 503 `unavailable` with Retry-After
  (uvicorn's `limit_concurrency` answers the same in plain text, so it is left off).

Each of these answers carries an X-Request-ID (the client's when sane). A refusal of a head that
carried an Authorization header before it was refused is handed to the app's REFUSED_HEAD hook
(http/head_refusals.py), which keeps it as a rejection when the key is valid.

The counting lives in the parser callbacks and costs a few integer adds per request; a timer is
armed only for a head that did not arrive in one read.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from thrad_events.errors import (
    BadRequest,
    HeadersTooLarge,
    IngestError,
    RequestTimeout,
    Unavailable,
)
from thrad_events.http.coalesce import CoalescingTransport
from thrad_events.http.errors import error_answer
from thrad_events.logs import request_id_for

log = logging.getLogger(__name__)

# The lifespan state's key for what ends the app's open streams (the debugger's): a stream never
# completes on its own, and uvicorn's stop waits for every response in progress.
STOP_STREAMS = "thrad.stop_streams"
# The lifespan state's key for what is told of a head refused here: (path, Authorization,
# error, request id), called only when the head carried an Authorization header.
REFUSED_HEAD = "thrad.refused_head"
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
# What the cap counts of a head beyond the URL and the header names and values: the method,
# the version and the separators of an ordinary request line, and ": " and CRLF per header.
REQUEST_LINE_OVERHEAD = 16
HEADER_LINE_OVERHEAD = 4


class HeadRefused(Exception):
    """Raised inside a parser callback to stop the parser; `refusal` is the answer to send."""


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout_s: float = 5.0,
        max_connections: int = 4096,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.over_capacity = False
        self.refusal: IngestError | None = None
        # The head being read: True from its first byte until it is whole.
        self.in_head = False
        # Its size as the callbacks report it (URL, header names and values) and its lines.
        self.head_bytes = 0
        self.head_lines = 0
        # Bytes of reads that arrived while it was in progress: httptools holds a header line
        # until it ends, so a single endless line is seen only here.
        self.head_read_bytes = 0
        self.head_timer: TimerHandle | None = None
        # When the connection last fell idle (opened, or a response was sent); the head
        # timeout counts from here.
        self.idle_since = 0.0

    # -- connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A turn's writes, an answer's head and body among them, leave in one write at its end
        # (http/coalesce.py).
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        # Counted on connect, answered once the request is read: a response written before it
        # arrives would be lost to the reset that closing with unread data causes.
        self.over_capacity = len(self.connections) > self.max_connections
        self.idle_since = self.loop.time()
        # uvicorn arms its keep-alive timer only after a response; a fresh connection that
        # sends nothing would otherwise stay open for as long as the client likes.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def shutdown(self) -> None:
        super().shutdown()
        stop_streams = self.app_state.get(STOP_STREAMS)
        if stop_streams is not None:
            stop_streams()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Unlike in uvicorn, a byte that starts no request does not end the idle time (the
        # first byte of a request does, in on_message_begin): blank lines trickled between
        # requests keep nothing open.
        # Counted before feeding: a read that starts a new head is not counted here (the
        # callbacks count it), so nothing of a previous request's body is.
        if self.in_head:
            self.head_read_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            self.send_error(self.refusal or BadRequest(f"malformed HTTP request: {exc}"))
            return
        if self.in_head:
            if self.head_read_bytes > MAX_HEAD_BYTES:
                self.send_error(_too_large())
            elif self.head_timer is None:
                self._arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:
            # Idle again (uvicorn armed keep-alive): a head started early waits no longer.
            self.idle_since = self.loop.time()
            if self.in_head:
                self._cancel_head_timer()
                self._arm_head_timer()

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = REQUEST_LINE_OVERHEAD
        self.head_lines = 0
        self.head_read_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._refuse(_too_large())
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_lines += 1
        self.head_bytes += len(name) + len(value) + HEADER_LINE_OVERHEAD
        if self.head_lines > MAX_HEADER_LINES or self.head_bytes > MAX_HEAD_BYTES:
            self._refuse(_too_large())
        HttpToolsProtocol.on_header(self, name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.head_timer is not None:
            self._cancel_head_timer()
        if self.over_capacity:
            self._refuse(Unavailable("the server has too many open connections; retry", 1))
        super().on_headers_complete()

    # -- answers -------------------------------------------------------------------------------

    def send_error(self, error: IngestError) -> None:
        """Answer `error` with our JSON body and close: what follows on this connection is
        unread, so it cannot carry another request."""
        self._cancel_head_timer()
        answer = error_answer(error)
        # uvicorn keeps the current request's headers, lower-cased, as the parser reads them.
        headers = dict(self.headers)
        rid = request_id_for(_text(headers.get(b"x-request-id")))
        if self.in_head:
            self._tell_refused_head(_text(headers.get(b"authorization")), error, rid)
        content = [STATUS_LINE[answer.status]]
        for name, value in [*self.server_state.default_headers, *answer.headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"x-request-id: " + rid.encode("ascii") + b"\r\n",
                b"content-length: " + str(len(answer.body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                answer.body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    def _tell_refused_head(self, authorization: str | None, error: IngestError, rid: str) -> None:
        hook = self.app_state.get(REFUSED_HEAD)
        if hook is None or authorization is None:
            return
        path = self.url.partition(b"?")[0].decode("latin-1")
        try:
            hook(path, authorization, error, rid)
        except Exception:  # the answer goes out whatever the hook does
            log.exception("keeping a refused request head failed")

    def _refuse(self, error: IngestError) -> None:
        self.refusal = error
        raise HeadRefused(str(error))

    # -- the head timer ------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # A head sent while the previous request is answered (pipelining) gets its time
            # once that response is out (on_response_complete re-arms).
            delay = self.header_timeout_s
        else:
            delay = max(self.idle_since + self.header_timeout_s - self.loop.time(), 0.0)
        self.head_timer = self.loop.call_later(delay, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # never in the middle of another answer; re-armed when it is sent
        self.send_error(
            RequestTimeout(f"request headers not received within {self.header_timeout_s:g} s")
        )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _too_large() -> HeadersTooLarge:
    return HeadersTooLarge(
        f"request line and headers must fit in {MAX_HEAD_BYTES} bytes "
        f"and {MAX_HEADER_LINES} header lines"
    )
