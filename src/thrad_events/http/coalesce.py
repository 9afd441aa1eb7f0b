"""What a connection writes in one turn of the event loop, sent in one write at the turn's end.

uvicorn writes an answer's head and its body to the transport separately, and the transport
sends each at once: an answer with a body (every refusal) costs two send calls and two
segments, where a 204 costs one. Here a connection's writes are gathered and handed to the
transport together at the end of the turn, so any answer leaves in one write. The answers of a
turn then also leave together, after the turn's work, instead of one by one while it runs,
which measured cheaper for the server and its clients alike; refusals, answered in the turn
their request arrived in, gain most (BENCHMARKS.md, "Answers sent at the end of the turn").
Streamed bodies are not held back: each turn's chunks go out at its end, and a turn's writes
past FLUSH_AT_BYTES go out at once, so the transport's flow control (pause_writing) still sees
the data as it is produced.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Pending bytes that are written at once instead of at the end of the turn.
FLUSH_AT_BYTES = 64 * 1024


class CoalescingTransport:
    """A connection's transport whose writes of one loop turn reach the socket in one write.

    Everything but writing and closing is the wrapped transport's own. Closing writes what is
    pending first; aborting drops it, as an abort drops the transport's own buffer.
    """

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_AT_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what is pending to the transport now."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_bytes = 0
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._pending_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        # Asked on every answer (uvicorn, on_response_complete): not through __getattr__.
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._pending_bytes + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
