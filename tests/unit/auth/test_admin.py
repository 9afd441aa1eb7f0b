"""auth/admin.py on a real SQLite store: each operator action commits with its audit entry or not
at all, rotation's expiry rule, and the checks of operator-given values."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from thrad_events.auth import admin
from thrad_events.auth.keys import hash_api_key
from thrad_events.errors import Conflict, NotFound, ValidationFailed
from thrad_events.store.admin_sql import AdminSession
from thrad_events.store.base import Store
from thrad_events.store.sqlite import SqliteStore

ACTOR = "token:0123456789ab"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(f"sqlite:///{tmp_path / 'thrad.db'}")
    opened.migrate()
    yield opened
    opened.close_sync()


def trail(store: Store) -> list[tuple[str, str, str]]:
    entries = admin.audit_entries(store, None, 1000)
    return [(e.actor, e.action, e.target) for e in reversed(entries)]


def test_a_key_is_stored_hashed_and_recorded_with_its_partner(store: SqliteStore) -> None:
    made = admin.create_key(
        store, admin.CLI_ACTOR, partner="acme", label="prod", create_partner=True
    )
    [record] = store.list_keys()
    assert record.key_hash == hash_api_key(made.api_key)
    assert made.api_key.startswith(record.key_prefix)
    assert trail(store) == [
        ("cli", "partner.create", record.partner_id),
        ("cli", "key.create", record.key_id),
    ]


def test_the_first_start_key_is_made_once_and_recorded(store: SqliteStore) -> None:
    """serve's first start makes a `dev` partner and key through the audited path; a store
    that has a key gets none."""
    made = admin.create_first_key(store)
    assert made is not None
    [record] = store.list_keys()
    assert (record.partner_name, record.label, record.test) == ("dev", "dev", False)
    assert record.key_hash == hash_api_key(made.api_key)
    assert trail(store) == [
        ("cli", "partner.create", record.partner_id),
        ("cli", "key.create", record.key_id),
    ]
    assert admin.create_first_key(store) is None
    assert len(store.list_keys()) == 1


def test_a_refused_action_leaves_neither_a_change_nor_an_entry(store: SqliteStore) -> None:
    admin.create_partner(store, ACTOR, "acme")
    with pytest.raises(Conflict):
        admin.create_partner(store, ACTOR, "acme")
    with pytest.raises(ValidationFailed):
        admin.create_key(store, ACTOR, partner="nobody", label="l")
    with pytest.raises(NotFound):
        admin.revoke_key(store, ACTOR, "key_missing")
    assert [action for _, action, _ in trail(store)] == ["partner.create"]
    assert store.list_keys() == []


def test_an_action_whose_audit_entry_fails_is_rolled_back(store: SqliteStore) -> None:
    """The entry is written in the action's transaction: no entry, no action."""
    made = admin.create_key(store, ACTOR, partner="acme", label="l", create_partner=True)
    key_id = made.record.key_id

    def revoke_then_fail(session: AdminSession) -> None:
        session.revoke_key(key_id, datetime.now(UTC))
        session.record(datetime.now(UTC), ACTOR, "key.revoke", key_id, {})
        raise RuntimeError("the audit entry could not be written")

    with pytest.raises(RuntimeError):
        store.admin(revoke_then_fail)
    [record] = store.list_keys()
    assert record.revoked_at is None
    assert [action for _, action, _ in trail(store)] == ["partner.create", "key.create"]


def test_rotation_expires_the_old_key_at_the_earlier_of_its_expiry_and_the_grace(
    store: SqliteStore,
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=10)
    made = admin.create_key(
        store, ACTOR, partner="acme", label="l", expires_at=soon, rate_limit=3, create_partner=True
    )
    rotated = admin.rotate_key(store, ACTOR, made.record.key_id, 86_400)
    assert rotated.old.expires_at == made.record.expires_at
    assert rotated.new.record.expires_at == made.record.expires_at
    assert rotated.new.record.rate_limit == 3
    again = admin.rotate_key(store, ACTOR, rotated.new.record.key_id, 60)
    assert again.old.expires_at is not None
    assert datetime.fromisoformat(again.old.expires_at) < soon
    now = admin.rotate_key(store, ACTOR, again.new.record.key_id, 0)
    assert now.old.status() == "expired"
    with pytest.raises(Conflict, match="expired"):
        admin.rotate_key(store, ACTOR, now.old.key_id, 0)


def test_operator_writes_take_the_write_lock_of_other_processes(store: SqliteStore) -> None:
    """The same lock the group-commit writers commit under (as the CLI's writes)."""
    fd = os.open(f"{store.path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def create() -> None:
        admin.create_partner(store, ACTOR, "acme")
        done.set()

    thread = threading.Thread(target=create)
    try:
        thread.start()
        assert not done.wait(0.3), "written while another process held the lock"
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    thread.join(5)
    assert done.is_set()


def test_the_audit_trail_is_newest_first_from_since_and_limited(store: SqliteStore) -> None:
    for name in ("a", "b", "c"):
        admin.create_partner(store, ACTOR, name)
    entries = admin.audit_entries(store, None, 2)
    assert [e.details["name"] for e in entries] == ["c", "b"]
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert admin.audit_entries(store, later, 10) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty or blank"),
        ("\t ", "must not be empty or blank"),
        ("a" * 129, "must be at most 128 characters"),
        ("bell\x07", "must not contain control characters"),
        ("line\u2028break", "must not contain control characters"),
        ("\u202eevil", "must not contain control characters"),
    ],
)
def test_names_are_bounded_and_printable(value: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        admin.check_text(value, "name", admin.MAX_PARTNER_NAME_CHARS)
    assert refused.value.details[0].message == message


def test_a_name_may_be_any_printable_text() -> None:
    assert (
        admin.check_text("Acme GmbH & Co. 東京 🚀 Zürich", "name", 128)
        == "Acme GmbH & Co. 東京 🚀 Zürich"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-01T00:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01T02:00:00+02:00", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01T00:00:00", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_an_instant_is_iso_8601_in_utc(text: str, expected: datetime) -> None:
    assert admin.parse_instant(text, "since") == expected


@pytest.mark.parametrize(
    "text", ["tomorrow", "", "2027-13-01T00:00:00Z", "1" * 100, "0001-01-01T00:00:00+01:00"]
)
def test_a_malformed_instant_names_its_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        admin.parse_instant(text, "since")
    assert refused.value.details[0].field == "since"


def test_an_expiry_must_lie_ahead() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert admin.check_expiry("2026-06-02T00:00:00Z", now) == datetime(2026, 6, 2, tzinfo=UTC)
    for past in ("2026-06-01T00:00:00Z", "2020-01-01T00:00:00Z"):
        with pytest.raises(ValidationFailed, match="already past"):
            admin.check_expiry(past, now)
    with pytest.raises(ValidationFailed, match="9999"):
        admin.check_expiry("9999-12-31T23:00:00Z", now)
