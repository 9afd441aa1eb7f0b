"""WAL checkpoints on a thread of their own, off the commit path.

By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages: that one
commit copies the pages into the database file and fsyncs it, and every request waiting on it
waits too. Once the tables hold a million rows, event ids land on random index pages, every
commit dirties many pages, and those checkpoints come often: the commit tail latency they cause
is gone with a PASSIVE checkpoint every second from here (bench/sqlite_commit.py; the figures
are in BENCHMARKS.md).

The writer keeps a high `wal_autocheckpoint` as a backstop, so the WAL stays bounded even if
this thread cannot keep up (a long report holding a snapshot, say).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

# Pages (4 KiB each) the WAL may reach before a commit checkpoints by itself: the backstop.
BACKSTOP_PAGES = 10_000


class Checkpointer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], every_s: float = 1.0) -> None:
        self._connect = connect
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self._every_s):
                try:
                    if connection is None:
                        connection = self._connect()
                    # PASSIVE: copies what it can without waiting for readers or writers.
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    if not self._failing:
                        log.warning("WAL checkpoint failed (commits still checkpoint): %s", exc)
                    self._failing = True
                else:
                    self._failing = False
        finally:
            if connection is not None:
                connection.close()
