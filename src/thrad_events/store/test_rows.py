"""Test rows: what keeps the rows of test keys (and test clicks) apart from live ones.

A row sent with a test key is stored with `test` set. The flag is part of every unique key, so
a test row never dedupes against a live one; reports and exports leave test rows out unless
asked (`NOT_TEST`); and they are deleted once older than the retention, in small batches
(`purge_sql`), so that no delete holds the write lock for long. The SQL is the same on both
stores but for the placeholder and how `true` is written (SQLite keeps the flag as 0/1, and its
partial indexes are matched by the text of their condition).
"""

from __future__ import annotations

from collections.abc import Callable

# Each table with a test flag, and the column a batch of its rows is deleted by. Conversions
# go first: a test conversion never outlives the test click it names.
PURGED_TABLES = (("conversions", "id"), ("events", "id"), ("clicks", "click_id"))
# Rows deleted per statement: each is its own short transaction.
PURGE_BATCH_ROWS = 1000
# The clause that leaves test rows out (the flag is 0/1 on SQLite, a boolean on PostgreSQL).
NOT_TEST = "NOT {alias}test"


def not_test(alias: str = "") -> str:
    """`NOT test` on a table (`alias` as in `e`), the default filter of reports and exports."""
    return NOT_TEST.format(alias=f"{alias}." if alias else "")


def converts(click_is_test: bool, conversion_is_test: bool) -> bool:
    """Whether a conversion may name a click: a live conversion never names a test click (test
    clicks are deleted after the retention; a live row must not point at one). A test
    conversion may name any click, so a followed click link can be tried with a test key."""
    return conversion_is_test or not click_is_test


def purge_sql(table: str, key: str, placeholder: str, true: str) -> str:
    """Delete one batch of a table's test rows received before a time (two parameters: the
    time, the batch size), oldest first, through the partial index of test rows."""
    return (
        f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
        f"WHERE test = {true} AND received_at < {placeholder} "
        f"ORDER BY received_at LIMIT {placeholder})"
    )


def purge(delete_batch: Callable[[str, str, int], int], batch_rows: int) -> dict[str, int]:
    """Delete every table's old test rows, a batch at a time.

    `delete_batch(table, key, batch_rows)` deletes one batch (purge_sql) in a transaction of its
    own and returns how many rows it deleted. Returns the rows deleted per table.
    """
    deleted: dict[str, int] = {}
    for table, key in PURGED_TABLES:
        total = 0
        while True:
            count = delete_batch(table, key, batch_rows)
            total += count
            if count < batch_rows:
                break
        deleted[table] = total
    return deleted
