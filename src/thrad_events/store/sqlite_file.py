"""A SQLite database as a file: where a URL puts it, and whether the file there is ours."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def sqlite_path(database_url: str) -> Path:
    """sqlite:///relative/path or sqlite:////absolute/path."""
    return Path(database_url.removeprefix("sqlite:///"))


def is_our_database(path: Path) -> bool:
    """Whether the file at `path` is a SQLite database migrated by this service (it is only
    read: an empty file stays empty)."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as connection:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
    except sqlite3.Error:  # not a database at all
        return False
    return found is not None
