"""What a connection writes in one turn of the event loop reaches its transport in one write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from thrad_events.http.coalesce import FLUSH_AT_BYTES, CoalescingTransport
from thrad_events.http.protocol import JsonErrorHttpToolsProtocol

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the transport is asyncio's (uvloop's in the server)


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what it is asked to do, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", b""))

    def resume_reading(self) -> None:
        self.calls.append(("resume_reading", b""))

    def writes(self) -> list[bytes]:
        return [data for call, data in self.calls if call == "write"]


async def _next_turn() -> None:
    await asyncio.sleep(0)


async def test_the_writes_of_one_turn_leave_together_at_its_end() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    head = b"HTTP/1.1 422 Unprocessable Entity\r\n\r\n"
    transport.write(head)
    transport.write(bytearray(b'{"error":'))
    transport.write(memoryview(b"{}}"))
    assert raw.writes() == []
    assert transport.get_write_buffer_size() == len(head) + 9 + 3 + 7
    await _next_turn()
    assert raw.writes() == [b'HTTP/1.1 422 Unprocessable Entity\r\n\r\n{"error":{}}']
    assert transport.get_write_buffer_size() == 7


async def test_writes_of_separate_turns_leave_separately_and_empty_ones_not_at_all() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"")
    await _next_turn()
    transport.write(b"data: one\n\n")
    await _next_turn()
    transport.writelines([b"data: ", b"two\n\n"])
    await _next_turn()
    await _next_turn()
    assert raw.writes() == [b"data: one\n\n", b"data: two\n\n"]


async def test_a_turn_writing_more_than_the_threshold_writes_at_once() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"h" * 10)
    transport.write(b"b" * FLUSH_AT_BYTES)
    assert raw.writes() == [b"h" * 10 + b"b" * FLUSH_AT_BYTES]
    transport.write(b"tail")
    await _next_turn()
    assert raw.writes()[1:] == [b"tail"]


async def test_close_and_write_eof_write_what_is_pending_first_and_abort_drops_it() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"last answer")
    transport.close()
    assert raw.calls == [("write", b"last answer"), ("close", b"")]
    await _next_turn()
    assert raw.writes() == [b"last answer"]  # the scheduled flush finds nothing left

    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"before the end")
    transport.write_eof()
    assert raw.calls == [("write", b"before the end"), ("write_eof", b"")]

    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"never sent")
    transport.abort()
    await _next_turn()
    assert raw.calls == [("abort", b"")]


async def test_everything_else_is_the_transports_own() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 4000)
    transport.pause_reading()
    transport.resume_reading()
    assert not transport.is_closing()
    assert raw.calls == [("pause_reading", b""), ("resume_reading", b"")]


async def _refusing_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    body = b'{"error":{"code":"validation_error"}}'
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def test_the_protocol_sends_an_answers_head_and_body_in_one_write() -> None:
    """uvicorn writes a head and a body apart; through our protocol they are one write, and a
    second request on the connection gets its own."""
    config = Config(app=_refusing_app, log_config=None, lifespan="off")
    config.load()
    protocol = JsonErrorHttpToolsProtocol(config, ServerState(), {})
    raw = RecordingTransport()
    protocol.connection_made(raw)
    request = (
        b"POST /v1/api/collect HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 15\r\n\r\n{"event_name":5'
    )
    for _ in range(2):
        protocol.data_received(request)
        for _ in range(5):
            await _next_turn()
    writes = raw.writes()
    assert len(writes) == 2
    for answer in writes:
        assert answer.startswith(b"HTTP/1.1 422 ")
        assert answer.endswith(b'\r\n\r\n{"error":{"code":"validation_error"}}')
    protocol.connection_lost(None)
