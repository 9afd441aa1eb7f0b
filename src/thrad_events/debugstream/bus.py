"""How the processes of one service reach each other for the debugger, when the store is SQLite.

A SQLite database lives on one host, so its worker processes are all there: each listens on a
unix socket in a private directory named after the database file, and connects to the others'
(found by listing the directory once a second). A frame is one line. A peer whose socket buffer
is full (a stuck process) loses frames instead of growing our memory. PostgreSQL, shared by
processes on many hosts, has its own bus (pg_bus.py).

Joining: each connection opens with the hub's greeting (the leases of this process's streams)
and a hello line naming the connecting socket. A process that reads a hello from a peer it has
no connection to connects back at once, greeting it in turn. A starting process waits (briefly)
until every peer it found has greeted it, so it knows who watches before it serves a request:
otherwise a request could reach a new worker before the lease that says its partner is watched.
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
# How long a starting process waits for its peers' greetings, and for one connection: a peer
# too slow for that is treated as gone until the next round finds it.
JOIN_WAIT_S = 2.0
CONNECT_TIMEOUT_S = 1.0
# The first line on a connection after the greeting: b"H" + the connecting process's socket.
# It is the bus's own and never reaches the hub.
_HELLO = b"H"


class LocalBus:
    """This process only (one worker; also the tests' and benchmarks' bus)."""

    def __init__(self) -> None:
        self._deliver: Callable[[bytes], None] = lambda frame: None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(
        self, deliver: Callable[[bytes], None], greeting: Callable[[], bytes | None]
    ) -> None:
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
        # Connections being made (by a round and by a hello at once: one connection per peer).
        self._connecting: set[str] = set()
        # The peers whose greeting we have read (their leases come before it on the line).
        self._greeted: set[str] = set()
        self._greeted_more = asyncio.Event()
        # The tasks reading what peers send us, and their connections, ended with the bus.
        self._readers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._deliver: Callable[[bytes], None] = lambda frame: None
        self._greeting: Callable[[], bytes | None] = lambda: None
        self.dropped = 0

    async def start(
        self, deliver: Callable[[bytes], None], greeting: Callable[[], bytes | None]
    ) -> None:
        self._deliver, self._greeting = deliver, greeting
        for attempt in range(3):
            try:
                self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                if self._directory.stat().st_uid != os.getuid():
                    # Another user's directory: its sockets could feed us anything. This
                    # process's streams still see this process's requests.
                    log.warning("debug stream: %s is not ours; other workers unreachable",
                                self._directory)  # fmt: skip
                    self._loop = asyncio.get_running_loop()
                    return
                self._server = await asyncio.start_unix_server(
                    self._serve_peer, path=str(self._path), limit=MAX_FRAME_BYTES
                )
                break
            except FileNotFoundError:
                # The last worker of a previous run removed the directory as we made it.
                if attempt == 2:
                    raise
        os.chmod(self._path, 0o600)
        await self.tick()
        await self._wait_for_greetings(JOIN_WAIT_S)

    async def _wait_for_greetings(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while missing := self._peers.keys() - self._greeted - {str(self._path)}:
            left = deadline - loop.time()
            if left <= 0:
                log.info("debug stream: no greeting from %d peer(s) at start", len(missing))
                return
            self._greeted_more.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._greeted_more.wait(), left)

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers[task] = writer
        try:
            while line := await reader.readline():
                if not line.endswith(b"\n"):
                    break
                if line.startswith(_HELLO):
                    self._hello(line[1:-1].decode(errors="replace"))
                else:
                    self._deliver(line[:-1])
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._readers.pop(task, None)

    def _hello(self, path: str) -> None:
        """A peer greeted us: we have its leases, and it must have ours."""
        if Path(path).parent != self._directory or not path.endswith(".sock"):
            return
        log.debug("debug stream: greeted by %s", Path(path).name)
        self._greeted.add(path)
        self._greeted_more.set()
        if path not in self._peers and path not in self._connecting:
            task = asyncio.get_running_loop().create_task(self._connect(path))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

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
        for path, writer in list(self._peers.items()):
            if path not in present or writer.is_closing():
                # Gone, or its connection broke: made again below while its socket is there.
                log.debug("debug stream: peer %s left", Path(path).name)
                del self._peers[path]
                self._greeted.discard(path)
                writer.close()
        for path in present - self._peers.keys() - self._connecting:
            await self._connect(path)

    async def _connect(self, path: str) -> None:
        if path in self._connecting or path in self._peers:
            return
        self._connecting.add(path)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            log.debug("debug stream: cannot reach %s (%s)", Path(path).name, exc)
            # Refused: a worker between bind and listen (tried again next round), or one that
            # died without cleaning up, whose file goes once its process is gone.
            if not _alive(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            return
        finally:
            self._connecting.discard(path)
        if self._server is None:
            writer.close()
            return
        # No await from here on: every frame sent after the greeting follows it on the line.
        greeting = self._greeting()
        if greeting is not None:
            writer.write(greeting + b"\n")
        writer.write(_HELLO + str(self._path).encode() + b"\n")
        self._peers[path] = writer
        log.debug("debug stream: connected to %s", Path(path).name)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            # The last worker out leaves no directory behind (it fails while others are in).
            with contextlib.suppress(OSError):
                self._directory.rmdir()
        for task in list(self._answering):
            task.cancel()
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
        from thrad_events.store.sqlite_file import sqlite_path

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
