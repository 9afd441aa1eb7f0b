"""Storage backends behind one interface (store.base.Store), chosen by the database URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from thrad_events.config import (
    WRITE_BATCH_MAX_ROWS,
    WRITE_QUEUE_MAX_ROWS,
    WRITE_TIMEOUT_S,
    ConfigError,
)
from thrad_events.store.base import Store
from thrad_events.store.sqlite_file import is_our_database, sqlite_path


def open_store(
    database_url: str,
    *,
    write_batch_max_rows: int = WRITE_BATCH_MAX_ROWS,
    write_queue_max_rows: int = WRITE_QUEUE_MAX_ROWS,
    on_batch: Callable[[int, float], None] | None = None,
    write_timeout_s: float = WRITE_TIMEOUT_S,
) -> Store:
    if database_url.startswith("sqlite:///"):
        from thrad_events.store.sqlite import SqliteStore

        return SqliteStore(
            database_url,
            write_batch_max_rows=write_batch_max_rows,
            write_queue_max_rows=write_queue_max_rows,
            on_batch=on_batch,
            write_timeout_s=write_timeout_s,
        )
    if database_url.startswith(("postgresql://", "postgres://")):
        from thrad_events.store.postgres import PostgresStore

        return PostgresStore(
            database_url,
            write_batch_max_rows=write_batch_max_rows,
            write_queue_max_rows=write_queue_max_rows,
            on_batch=on_batch,
            write_timeout_s=write_timeout_s,
        )
    raise ConfigError(f"THRAD_DATABASE_URL: unsupported database {database_url.split(':')[0]!r}")


def missing_sqlite_file(database_url: str) -> Path | None:
    """The resolved path of a SQLite file that holds no database of ours: one that does not
    exist yet, an empty file, another program's database, a file that is no database at all;
    None otherwise.

    Only `serve` and `migrate` may create a database: any other command pointed at a wrong path
    would otherwise start an empty one, with its own click secret, that no server reads (or
    write our tables into a file that is not ours).
    """
    if not database_url.startswith("sqlite:///"):
        return None
    path = sqlite_path(database_url).resolve()
    return None if path.exists() and is_our_database(path) else path
