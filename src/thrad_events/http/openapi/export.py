"""The OpenAPI description of GET /v1/api/export/{events,conversions} (http/export.py)."""

from __future__ import annotations

from typing import Any

from thrad_events.fields import TABLES
from thrad_events.http.export import DEFAULT_EXPORT_LIMIT, EXPORT_TABLES, FORMATS, MAX_EXPORT_LIMIT
from thrad_events.http.openapi.shared import (
    ISO_TIME_PATTERN,
    PARTNER_ID,
    PARTNER_REF_PATTERN,
    query,
    read_errors,
)
from thrad_events.reports.export_cursor import MAX_CURSOR_CHARS


def export_paths() -> dict[str, Any]:
    """The export paths."""
    cursor = {
        "type": "string",
        "maxLength": MAX_CURSOR_CHARS,
        "pattern": r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
    }
    parameters = [
        query(
            "since",
            {"type": "string", "pattern": ISO_TIME_PATTERN},
            "Rows received at or after this ISO-8601 time (UTC when no offset) "
            "[default: the first row]",
        ),
        query(
            "until",
            {"type": "string", "pattern": ISO_TIME_PATTERN},
            "Rows received before this time; never later than a few seconds ago "
            "(THRAD_EXPORT_SETTLE_S), rows still being committed are left for the next "
            "export [default: that moment]",
        ),
        query(
            "format",
            {"type": "string", "enum": list(FORMATS), "default": "jsonl"},
            "jsonl: one JSON object per line; csv: a header row, then one row per line",
        ),
        query(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_EXPORT_LIMIT,
                "default": DEFAULT_EXPORT_LIMIT,
            },
            "Most rows in this page",
        ),
        query(
            "cursor",
            cursor,
            "The previous page's X-Next-Cursor, as given; it keeps that export's partner "
            "and window, so since, until and partner_id are not given with it",
        ),
        PARTNER_ID,
        query(
            "partner",
            {"type": "string", "pattern": PARTNER_REF_PATTERN},
            "Another name for partner_id",
        ),
        query(
            "include_test",
            {"type": "boolean", "default": False},
            "true: also the rows sent with test keys (flagged test: true)",
        ),
    ]
    paths: dict[str, Any] = {}
    for table in EXPORT_TABLES:
        row = {
            "type": "object",
            "properties": {column: {} for column in TABLES[table].columns},
            "description": "A stored row: the request's fields, received_at, partner_id and "
            "the enrichment",
        }
        paths[f"/v1/api/export/{table}"] = {
            "get": {
                "summary": f"Export stored {table}, oldest first, a page at a time",
                "description": "Streams at most `limit` rows received in [since, until). When "
                'more follow, `X-Next-Cursor` (and `Link: <...>; rel="next"`) gives the next '
                "page; without it the export is complete. The next export starts at this "
                "one's `X-Export-Until`.",
                "security": [{"bearer": []}],
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": "The page's rows",
                        "headers": {
                            "X-Next-Cursor": {
                                "schema": cursor,
                                "description": "Present when more rows follow",
                            },
                            "Link": {
                                "schema": {"type": "string"},
                                "description": 'The next page\'s URL, rel="next"',
                            },
                            "X-Export-Until": {
                                "schema": {"type": "string"},
                                "description": "The export's window end, UTC",
                            },
                        },
                        "content": {
                            "application/x-ndjson": {
                                "schema": {"type": "string"},
                                "x-item-schema": row,
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **read_errors("forbidden: another partner's partner_id or cursor"),
                },
            }
        }
    return paths
