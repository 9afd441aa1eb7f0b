"""Structured JSON logs (structlog) on stderr, one object per line, with the request id.

Our own loggers and uvicorn's go through the same renderer. Nothing logs API keys or
Authorization headers: requests are never logged whole, only their outcome and id.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar

import structlog

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Minted request ids: a random prefix per process and a counter, 32 hex digits like a uuid4's.
# They need to be unique, not unguessable, and os.urandom on every request would give up the
# GIL each time, which the group-commit writer thread then holds for a switch interval.
_id_prefix = os.urandom(8).hex()
_id_counter = itertools.count()


def _reseed_ids() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count()


os.register_at_fork(after_in_child=_reseed_ids)


def new_request_id() -> str:
    return f"{_id_prefix}{next(_id_counter):016x}"


_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(given: str | None) -> str:
    """The client's X-Request-ID when it is a sane token (safe to log and echo), else a new one."""
    return given if given is not None and _SANE_REQUEST_ID.fullmatch(given) else new_request_id()


def _add_request_id(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    current = request_id.get()
    if current is not None:
        event.setdefault("request_id", current)
    return event


def _drop_color_message(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    event.pop("color_message", None)
    return event


def configure_logging(level: str = "INFO", *, access_log: bool = False) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _add_request_id,
        _drop_color_message,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Off by default: metrics count requests, and rejections have lines of their own.
    logging.getLogger("uvicorn.access").disabled = not access_log
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


rejections_log = logging.getLogger("thrad_events.rejections")


class RejectionLog:
    """One INFO line per rejected request: route, status, code, partner, key id and (from the
    context) request id; never a key, a header or a body.

    Under a flood at most `per_second` lines a second are written by this process; the lines
    skipped are counted and the next line written says how many (`skipped`), so an operator
    sees the flood without the log becoming it.
    """

    def __init__(self, per_second: int = 50, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_second = per_second
        self._clock = clock
        self._window_start = -1.0
        self._written = 0
        self._skipped = 0

    def rejected(
        self,
        *,
        route: str,
        status: int,
        code: str,
        partner_id: str | None = None,
        key_id: str | None = None,
    ) -> None:
        now = self._clock()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._written = 0
        if self._written >= self._per_second:
            self._skipped += 1
            return
        self._written += 1
        fields: dict[str, object] = {
            "route": route,
            "status": status,
            "code": code,
            "partner_id": partner_id,
            "key_id": key_id,
        }
        if self._skipped:
            fields["skipped"] = self._skipped
            self._skipped = 0
        rejections_log.info("request rejected", extra=fields)
