"""store/test_rows.py on a real SQLite file: old test rows deleted batch by batch, live rows and
young test rows kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from thrad_events.store.sqlite import SqliteStore
from thrad_events.store.test_rows import converts


def test_purge_deletes_old_test_rows_in_batches_and_keeps_the_rest(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'thrad.db'}")
    store.migrate()
    old = datetime(2026, 1, 1, tzinfo=UTC)
    young = old + timedelta(days=30)

    def add(received_at: datetime, test: bool, event_id: str) -> None:
        store._write_now(
            lambda c: c.execute(
                "INSERT INTO events (received_at, partner_id, event_name, tag_id, event_id, "
                "timestamp, channel, params, test) VALUES (?, 'p', 'x', 't', ?, 0, 'server', "
                "'{}', ?)",
                (received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), event_id, int(test)),
            )
        )

    for i in range(5):
        add(old, True, f"old-test-{i}")
    add(old, False, "old-live")
    add(young, True, "young-test")
    deleted = store.purge_test_rows(old + timedelta(days=1), batch_rows=2)
    assert deleted == {"conversions": 0, "events": 5, "clicks": 0}
    left = store._thread_connection().execute("SELECT event_id FROM events ORDER BY event_id")
    assert [row[0] for row in left] == ["old-live", "young-test"]
    store.close_sync()


def test_only_a_live_conversion_is_kept_from_a_test_click() -> None:
    assert converts(click_is_test=False, conversion_is_test=False)
    assert converts(click_is_test=False, conversion_is_test=True)
    assert converts(click_is_test=True, conversion_is_test=True)
    assert not converts(click_is_test=True, conversion_is_test=False)
