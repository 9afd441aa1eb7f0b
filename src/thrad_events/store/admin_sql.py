"""The operator's reads and writes (partners, keys, tags, the audit trail), as SQL written once.

Both stores run the same statements: SQLite on its own connection under the write lock, PostgreSQL
in a transaction of its own (`Store.admin`). What differs is the placeholder, how a time is bound
and read back, and whether a key row is locked while a rotation reads it (store/dialect.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString, Protocol

import msgspec

from thrad_events.store.dialect import SqlDialect
from thrad_events.store.records import ApiKeyRecord
from thrad_events.store.tags import TagSession

_json = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


class AdminConnection(Protocol):
    """What both drivers' connections offer: execute, returning a cursor."""

    def execute(self, sql: Any, parameters: Any = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    partner_id: str
    name: str
    created_at: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]


# The columns an operator may change on a key.
KEY_CHANGES = ("label", "rate_limit", "expires_at")

# A key with its partner's name, the columns in key_record's order: also the stores' lookup.
KEY_SELECT: LiteralString = (
    "SELECT k.key_id, k.partner_id, p.name, k.label, k.key_hash, k.key_prefix, k.created_at, "
    "k.expires_at, k.revoked_at, k.last_used_at, k.rate_limit, k.test "
    "FROM api_keys k JOIN partners p ON p.partner_id = k.partner_id"
)


def key_record(row: Sequence[Any], dialect: SqlDialect) -> ApiKeyRecord:
    """A KEY_SELECT row as the record every caller speaks in (times as format_time's text)."""

    def time(value: Any) -> str | None:
        return None if value is None else dialect.read_time(value)

    return ApiKeyRecord(
        key_id=row[0],
        partner_id=row[1],
        partner_name=row[2],
        label=row[3],
        key_hash=row[4],
        key_prefix=row[5],
        created_at=dialect.read_time(row[6]),
        expires_at=time(row[7]),
        revoked_at=time(row[8]),
        last_used_at=time(row[9]),
        rate_limit=row[10],
        test=bool(row[11]),
    )


class AdminSession:
    """One transaction's worth of operator reads and writes on one connection."""

    def __init__(self, connection: AdminConnection, dialect: SqlDialect) -> None:
        self._connection = connection
        self._dialect = dialect

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.execute(self._dialect.sql(sql), params)

    # -- partners ------------------------------------------------------------------------------

    def partners(self, limit: int) -> list[PartnerRecord]:
        found = self._run(
            "SELECT partner_id, name, created_at FROM partners ORDER BY name LIMIT ?", (limit,)
        )
        return [self._partner(row) for row in found.fetchall()]

    def partner(self, ref: str) -> PartnerRecord | None:
        """The partner whose id or name is `ref`."""
        found = self._run(
            "SELECT partner_id, name, created_at FROM partners WHERE partner_id = ? OR name = ? "
            "ORDER BY partner_id = ? DESC LIMIT 1",
            (ref, ref, ref),
        ).fetchone()
        return self._partner(found) if found is not None else None

    def add_partner(self, partner_id: str, name: str, at: datetime) -> bool:
        """False when a partner of that name exists already."""
        cursor = self._run(
            "INSERT INTO partners (partner_id, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (partner_id, name, self._dialect.bind_time(at)),
        )
        return bool(cursor.rowcount == 1)

    def _partner(self, row: Sequence[Any]) -> PartnerRecord:
        return PartnerRecord(row[0], row[1], self._dialect.read_time(row[2]))

    # -- keys ----------------------------------------------------------------------------------

    def keys(self, partner_id: str | None, limit: int | None) -> list[ApiKeyRecord]:
        """Oldest first, of one partner or of all, at most `limit` (None: every one)."""
        sql = KEY_SELECT + (" WHERE k.partner_id = ?" if partner_id else "")
        args: list[Any] = [partner_id] if partner_id else []
        sql += " ORDER BY k.created_at, k.key_id"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, limit]
        return [key_record(row, self._dialect) for row in self._run(sql, args).fetchall()]

    def key(self, key_id: str, *, for_update: bool = False) -> ApiKeyRecord | None:
        # Concurrent rotations of one key take turns (SQLite's write lock does that already).
        lock = " FOR UPDATE OF k" if for_update and self._dialect.lock_rows else ""
        found = self._run(f"{KEY_SELECT} WHERE k.key_id = ?{lock}", (key_id,)).fetchone()
        return key_record(found, self._dialect) if found is not None else None

    def has_keys(self) -> bool:
        return self._run("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def add_key(
        self,
        *,
        key_id: str,
        partner_id: str,
        label: str,
        key_hash: str,
        key_prefix: str,
        created_at: datetime,
        expires_at: datetime | None,
        rate_limit: int | None,
        test: bool = False,
    ) -> None:
        bind = self._dialect.bind_time
        self._run(
            "INSERT INTO api_keys (key_id, partner_id, label, key_hash, key_prefix, created_at, "
            "expires_at, rate_limit, test) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                partner_id,
                label,
                key_hash,
                key_prefix,
                bind(created_at),
                bind(expires_at) if expires_at is not None else None,
                rate_limit,
                test,
            ),
        )

    def change_key(self, key_id: str, changes: dict[str, Any]) -> None:
        """Set the KEY_CHANGES columns given (a None rate_limit: the server's default)."""
        names = [name for name in KEY_CHANGES if name in changes]
        if not names:
            return
        values = [
            self._dialect.bind_time(changes[name])
            if isinstance(changes[name], datetime)
            else changes[name]
            for name in names
        ]
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._run(f"UPDATE api_keys SET {assignments} WHERE key_id = ?", (*values, key_id))

    def revoke_key(self, key_id: str, at: datetime) -> bool:
        """False when the key was revoked already (its first revocation time is kept)."""
        cursor = self._run(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (self._dialect.bind_time(at), key_id),
        )
        return bool(cursor.rowcount == 1)

    # -- the browser Tag registry ---------------------------------------------------------------

    def tags(self) -> TagSession:
        """The registry's statements, in this session's transaction (store/tags.py)."""
        return TagSession(self._connection, self._dialect)

    # -- the audit trail -----------------------------------------------------------------------

    def record(
        self, at: datetime, actor: str, action: str, target: str, details: dict[str, Any]
    ) -> None:
        self._run(
            "INSERT INTO admin_audit (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (self._dialect.bind_time(at), actor, action, target, _json.encode(details).decode()),
        )

    def audit(self, since: datetime | None, limit: int) -> list[AuditRecord]:
        """Newest first, from `since` (inclusive) on."""
        where, params = (" WHERE at >= ?", [self._dialect.bind_time(since)]) if since else ("", [])
        found = self._run(
            "SELECT id, at, actor, action, target, details FROM admin_audit"
            f"{where} ORDER BY at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [
            AuditRecord(
                int(row[0]),
                self._dialect.read_time(row[1]),
                row[2],
                row[3],
                row[4],
                _json_decoder.decode(row[5]),
            )
            for row in found.fetchall()
        ]
