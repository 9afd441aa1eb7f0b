"""Helpers of the browser Tag's tests: registering tags, signing click proofs, reading rows."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from tests.integration.server import cli, export

ADMIN_TOKEN = "admin-token-for-tag-tests"
CLICK_SECRET = "click-secret-for-tag-tests"
SERVER_ENV = {"THRAD_ADMIN_TOKEN": ADMIN_TOKEN, "THRAD_CLICK_SECRET": CLICK_SECRET}


def new_tag_id() -> str:
    return "tag_" + secrets.token_hex(6)


def register_tag(
    database_url: str, partner: str, tag_id: str, *origins: str, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`tags create --json`, with each of `origins` as an --origin."""
    args = [arg for origin in origins for arg in ("--origin", origin)]
    out = cli(
        database_url,
        "tags",
        "create",
        "--partner",
        partner,
        "--tag-id",
        tag_id,
        *args,
        *extra,
        "--json",
        env=SERVER_ENV,
    )
    return dict(json.loads(out))


def rows_where(
    database_url: str, table: str, match: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    return [row for row in export(database_url, table) if match(row)]


def wait_for_rows(
    database_url: str,
    table: str,
    match: Callable[[dict[str, Any]], bool],
    count: int = 1,
    timeout_s: float = 20.0,
) -> list[dict[str, Any]]:
    """The rows that `match`, once there are `count` of them (a page's beacons arrive after it
    closed); whatever there is when `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = rows_where(database_url, table, match)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
