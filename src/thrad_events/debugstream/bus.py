"""How the processes of one service reach each other for the debugger, when the store is SQLite.

A SQLite database lives on one host, so its worker processes are all there: each listens on a
unix socket in a private directory named after the database file, and connects to the others'
(found by listing the directory once a second, and from the leases they send). A frame is one
line. A peer whose socket buffer is full (a stuck process) loses frames instead of growing our
memory. PostgreSQL, shared by processes on many hosts, has its own bus (pg_bus.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thrad_events.debugstream.hub import Bus

log = logging.getLogger(__name__)

# Bytes that may wait to be written to one peer before frames to it are dropped.
MAX_PEER_BUFFER_BYTES = 1024 * 1024
# A frame is at most a debug event (events.MAX_EVENT_BYTES) and its header.
MAX_FRAME_BYTES = 64 * 1024


class LocalBus:
    """This process only (one worker; also the tests' and benchmarks' bus)."""

    def __init__(self) -> None:
        self._deliver: Callable[[bytes], None] = lambda frame: None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()

    def send(self, frame: bytes) -> None:
        if self._loop is not None:
            self._loop.call_soon(self._deliver, frame)

    async def tick(self) -> None:
        return None

    async def close(self) -> None:
        self._loop = None


def socket_directory(database_path: Path) -> Path:
    """Where the workers serving `database_path` meet: short (unix socket paths are capped at
    about 100 bytes) and private to this user."""
    digest = hashlib.sha256(str(database_path.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"thrad-debug-{os.getuid()}-{digest}"


class UnixSocketBus:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        self._server: asyncio.Server | None = None
        # Set when the directory cannot be used: frames go to this process only.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: dict[str, asyncio.StreamWriter] = {}
        # The tasks reading what peers send us, and their connections, ended with the bus.
        self._readers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._deliver: Callable[[bytes], None] = lambda frame: None
        self.dropped = 0

    async def start(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._directory.stat().st_uid != os.getuid():
            # Another user's directory: its sockets could feed us anything. This process's
            # streams still see this process's requests.
            log.warning("debug stream: %s is not ours; other workers unreachable", self._directory)
            self._loop = asyncio.get_running_loop()
            return
        self._server = await asyncio.start_unix_server(
            self._serve_peer, path=str(self._path), limit=MAX_FRAME_BYTES
        )
        os.chmod(self._path, 0o600)
        await self.tick()

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers[task] = writer
        try:
            while line := await reader.readline():
                if line.endswith(b"\n"):
                    self._deliver(line[:-1])
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._readers.pop(task, None)

    def send(self, frame: bytes) -> None:
        if self._loop is not None:
            self._loop.call_soon(self._deliver, frame)
            return
        line = frame + b"\n"
        for path, writer in list(self._peers.items()):
            if writer.is_closing():
                del self._peers[path]
            elif writer.transport.get_write_buffer_size() > MAX_PEER_BUFFER_BYTES:
                self.dropped += 1
            else:
                writer.write(line)

    async def tick(self) -> None:
        if self._server is None:
            return
        try:
            present = {str(p) for p in self._directory.glob("*.sock")}
        except OSError:
            return
        for path in list(self._peers):
            if path not in present:
                self._peers.pop(path).close()
        for path in present - self._peers.keys():
            await self._connect(path)

    async def _connect(self, path: str) -> None:
        try:
            _, writer = await asyncio.open_unix_connection(path)
        except OSError:
            # Refused: a worker between bind and listen (tried again next round), or one that
            # died without cleaning up, whose file goes once its process is gone.
            if not _alive(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            return
        self._peers[path] = writer

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        for writer in self._peers.values():
            writer.close()
        self._peers.clear()
        # Closed, not cancelled: asyncio's server logs a cancelled connection task as an error.
        readers = list(self._readers.items())
        for _, writer in readers:
            writer.close()
        if readers:
            await asyncio.wait([task for task, _ in readers], timeout=1.0)


def open_bus(database_url: str) -> Bus:
    """The bus that reaches every process serving `database_url`."""
    if database_url.startswith("sqlite:///"):
        from thrad_events.store.sqlite import sqlite_path

        return UnixSocketBus(socket_directory(sqlite_path(database_url)))
    from thrad_events.debugstream.pg_bus import PostgresNotifyBus

    return PostgresNotifyBus(database_url)


def _alive(path: str) -> bool:
    """Whether the process that made the socket at `path` (named `<pid>-<random>.sock`) runs."""
    try:
        pid = int(Path(path).name.split("-", 1)[0])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
