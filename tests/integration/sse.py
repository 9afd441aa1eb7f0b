"""A server-sent events reader for tests: reads a stream on a thread, hands out its events."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx


class EventStream:
    """GET `url` with `token` as a bearer and collect each event (kind and JSON data)."""

    def __init__(self, url: str, token: str) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.raw: list[str] = []
        self.ended = threading.Event()
        self.status: int | None = None
        self.error_body: dict[str, Any] | None = None
        self._answered = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self._thread.start()
        if not self._answered.wait(20):
            raise TimeoutError(f"no answer from {url}")

    def _read(self, url: str, token: str) -> None:
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with self._client.stream("GET", url, headers=headers) as response:
                self._response = response
                self.status = response.status_code
                if response.status_code != 200:
                    self.error_body = json.loads(response.read())
                    self._answered.set()
                    # No stream to read: its connection is not kept for a close() that a
                    # test refused an answer may never call.
                    self._client.close()
                    return
                self._answered.set()
                kind, data = "message", []
                for line in response.iter_lines():
                    self.raw.append(line)
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.events.put((kind, json.loads("\n".join(data))))
                        kind, data = "message", []
        except (httpx.HTTPError, RuntimeError, ValueError):
            pass
        finally:
            self._answered.set()
            self.ended.set()

    def next(self, kind: str = "request", timeout_s: float = 15.0) -> dict[str, Any]:
        """The next event of `kind` (others are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} event within {timeout_s}s; saw {self.raw[-20:]}")
            try:
                got_kind, data = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got_kind == kind:
                return data

    def requests(self, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        return [self.next("request", timeout_s) for _ in range(count)]

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(5)
