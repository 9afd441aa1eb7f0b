"""Operator actions on partners and API keys, each committed together with its audit entry
(the browser Tag registry's are in auth/tags.py, built on the same session and checks).

The admin API (http/admin.py) and the CLI call these same functions. `actor` says who acted:
`token:<fingerprint>` for the admin token over HTTP (auth/keys.py `token_fingerprint`), `cli` for
the command line. The checks of operator-given values live here too, so that both front ends
refuse the same things with the same words (a ValidationFailed naming the field). Every function
blocks on the store: the HTTP layer runs them on a thread.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from thrad_events.auth.keys import new_key_secret
from thrad_events.errors import Conflict, NotFound, ValidationFailed, field_error
from thrad_events.instants import format_time, utcnow
from thrad_events.store.admin_sql import AdminSession, AuditRecord, PartnerRecord
from thrad_events.store.base import Store
from thrad_events.store.records import ApiKeyRecord

CLI_ACTOR = "cli"
MAX_PARTNER_NAME_CHARS = 128
MAX_LABEL_CHARS = 256
MAX_RATE_LIMIT = 1_000_000
DEFAULT_GRACE_S = 86_400
MAX_GRACE_S = 90 * 86_400
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
# datetime's own bound: a later expiry cannot be stored or compared.
_LAST_EXPIRY = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A key just made: its record, and the secret, which exists nowhere else."""

    api_key: str
    record: ApiKeyRecord


@dataclass(frozen=True, slots=True)
class RotatedKey:
    new: CreatedKey
    old: ApiKeyRecord


# -- the checks of operator-given values --------------------------------------------------------


def check_text(value: str, field: str, most: int) -> str:
    """A name or label: 1 to `most` characters, not blank, nothing unprintable (it is shown on
    operators' terminals and in logs)."""
    if not value.strip():
        raise field_error(ValidationFailed, field, "must not be empty or blank")
    if len(value) > most:
        raise field_error(ValidationFailed, field, f"must be at most {most} characters")
    if not value.isprintable():
        # Control, format (bidi overrides) and separator characters, and lone surrogates.
        raise field_error(ValidationFailed, field, "must not contain control characters")
    return value


def check_rate_limit(value: int) -> int | None:
    """Requests per second, 1 to MAX_RATE_LIMIT; 0 means the server's default (None)."""
    if not 0 <= value <= MAX_RATE_LIMIT:
        raise field_error(ValidationFailed, "rate_limit", f"must be from 0 to {MAX_RATE_LIMIT}")
    return value or None


def parse_instant(text: str, field: str) -> datetime:
    """An ISO-8601 date-time (UTC when it has no offset), as a UTC datetime."""
    try:
        if len(text) > 64:
            raise ValueError
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise field_error(
            ValidationFailed, field, "must be an ISO-8601 date-time, e.g. 2027-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise field_error(ValidationFailed, field, "is out of range") from None


def check_expiry(text: str, now: datetime) -> datetime:
    """A key's expiry: a date-time after `now` (an expired key would be refused at once)."""
    moment = parse_instant(text, "expires_at")
    if moment <= now:
        raise field_error(ValidationFailed, "expires_at", "is already past")
    if moment >= _LAST_EXPIRY:
        raise field_error(ValidationFailed, "expires_at", "must be before the year 9999 ends")
    return moment


def check_grace(value: int) -> int:
    if not 0 <= value <= MAX_GRACE_S:
        raise field_error(
            ValidationFailed, "grace_seconds", f"must be from 0 to {MAX_GRACE_S} (90 days)"
        )
    return value


# -- partners -----------------------------------------------------------------------------------


def create_partner(store: Store, actor: str, name: str) -> PartnerRecord:
    """A new partner; Conflict when one has that name."""
    check_text(name, "name", MAX_PARTNER_NAME_CHARS)
    now = utcnow()

    def work(session: AdminSession) -> PartnerRecord:
        return _add_partner(session, actor, name, now)

    return store.admin(work)


def _add_partner(session: AdminSession, actor: str, name: str, now: datetime) -> PartnerRecord:
    partner_id = "ptn_" + secrets.token_hex(8)
    if not session.add_partner(partner_id, name, now):
        raise Conflict(f"a partner named {name!r} exists already")
    session.record(now, actor, "partner.create", partner_id, {"name": name})
    return PartnerRecord(partner_id, name, format_time(now))


def partner_or_new(session: AdminSession, actor: str, ref: str, now: datetime) -> PartnerRecord:
    """The partner whose id or name is `ref`, else a new one named `ref` (recorded as
    `partner.create`), in the caller's transaction."""
    found = session.partner(ref)
    if found is not None:
        return found
    check_text(ref, "partner", MAX_PARTNER_NAME_CHARS)
    partner_id = "ptn_" + secrets.token_hex(8)
    if session.add_partner(partner_id, ref, now):
        session.record(now, actor, "partner.create", partner_id, {"name": ref})
        return PartnerRecord(partner_id, ref, format_time(now))
    # Created by a concurrent transaction since: PostgreSQL's next statement sees it.
    found = session.partner(ref)
    if found is None:
        raise Conflict(f"partner {ref!r} is being created; try again")
    return found


def known_partner(session: AdminSession, ref: str, field: str = "partner") -> PartnerRecord:
    """The partner whose id or name is `ref`, with API keys or without (a Tag's partner); no
    such partner is a 422 naming `field`, not an empty answer that looks like a partner's."""
    found = session.partner(ref)
    if found is None:
        raise field_error(ValidationFailed, field, "no partner has this id or name")
    return found


def partner_id_of(store: Store, ref: str, field: str = "partner") -> str:
    """The id of the partner whose id or name is `ref` (known_partner, in a read of its own)."""
    return store.admin(lambda session: known_partner(session, ref, field), write=False).partner_id


def list_partners(store: Store, limit: int) -> tuple[list[PartnerRecord], bool]:
    """At most `limit` partners by name, and whether there were more."""
    found = store.admin(lambda session: session.partners(limit + 1), write=False)
    return found[:limit], len(found) > limit


# -- keys -------------------------------------------------------------------------------------


def create_key(
    store: Store,
    actor: str,
    *,
    partner: str,
    label: str,
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
    test: bool = False,
    create_partner: bool = False,
) -> CreatedKey:
    """A key of `partner` (its id or name). An unknown partner is refused, or created with
    `create_partner` (the CLI's `keys create`). A `test` key's rows are stored flagged test:
    kept out of reports and exports unless asked, deduplicated apart from live rows, deleted
    after THRAD_TEST_RETENTION_DAYS."""
    check_text(label, "label", MAX_LABEL_CHARS)
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise field_error(ValidationFailed, "expires_at", "is already past")

    def work(session: AdminSession) -> CreatedKey:
        found = session.partner(partner)
        if found is None:
            if not create_partner:
                raise field_error(
                    ValidationFailed, "partner", "no partner has this id or name; create it first"
                )
            found = partner_or_new(session, actor, partner, now)
        return _add_key(
            session, actor, found.partner_id, label, expires_at, rate_limit, now, test=test
        )

    return store.admin(work)


def create_first_key(store: Store) -> CreatedKey | None:
    """On a first start (no key at all): a `dev` partner and a key of it, recorded like the
    CLI's `keys create`; None when some key exists."""
    now = utcnow()

    def work(session: AdminSession) -> CreatedKey | None:
        if session.has_keys():
            return None
        dev = partner_or_new(session, CLI_ACTOR, "dev", now)
        return _add_key(session, CLI_ACTOR, dev.partner_id, "dev", None, None, now)

    return store.admin(work)


def _add_key(
    session: AdminSession,
    actor: str,
    partner_id: str,
    label: str,
    expires_at: datetime | None,
    rate_limit: int | None,
    now: datetime,
    *,
    test: bool = False,
    audited: bool = True,
) -> CreatedKey:
    """Insert a new key; `audited=False` when the caller's own entry covers it (a rotation)."""
    secret = new_key_secret(test)
    session.add_key(
        key_id=secret.key_id,
        partner_id=partner_id,
        label=label,
        key_hash=secret.key_hash,
        key_prefix=secret.key_prefix,
        created_at=now,
        expires_at=expires_at,
        rate_limit=rate_limit,
        test=test,
    )
    record = session.key(secret.key_id)
    assert record is not None  # written just now, in this transaction
    if audited:
        details = {
            "partner_id": partner_id,
            "label": label,
            "expires_at": record.expires_at,
            "rate_limit": rate_limit,
            "test": test,
        }
        session.record(now, actor, "key.create", secret.key_id, details)
    return CreatedKey(secret.api_key, record)


def list_keys(store: Store, partner: str | None, limit: int) -> tuple[list[ApiKeyRecord], bool]:
    """At most `limit` keys, oldest first, of one partner (its id or name) or of all."""

    def work(session: AdminSession) -> list[ApiKeyRecord]:
        partner_id = None if partner is None else known_partner(session, partner).partner_id
        return session.keys(partner_id, limit + 1)

    found = store.admin(work, write=False)
    return found[:limit], len(found) > limit


def _key_to_change(session: AdminSession, key_id: str) -> ApiKeyRecord:
    record = session.key(key_id, for_update=True)
    if record is None:
        raise NotFound(f"no key {key_id!r}")
    if record.revoked_at is not None:
        raise Conflict(f"key {key_id!r} is revoked; create a new one instead")
    return record


def update_key(store: Store, actor: str, key_id: str, changes: dict[str, Any]) -> ApiKeyRecord:
    """Change a key's `label`, `rate_limit` (None: the server's default) or `expires_at` (a
    datetime). NotFound for an unknown key, Conflict for a revoked one."""
    if "label" in changes:
        check_text(changes["label"], "label", MAX_LABEL_CHARS)
    now = utcnow()

    def work(session: AdminSession) -> ApiKeyRecord:
        _key_to_change(session, key_id)
        session.change_key(key_id, changes)
        record = session.key(key_id)
        assert record is not None
        details = {name: getattr(record, name) for name in changes}
        session.record(now, actor, "key.update", key_id, details)
        return record

    return store.admin(work)


def revoke_key(store: Store, actor: str, key_id: str) -> ApiKeyRecord:
    """Revoke a key (every node refuses it once its key cache has expired: a few seconds).
    Revoking it again changes nothing and is not recorded again."""
    now = utcnow()

    def work(session: AdminSession) -> ApiKeyRecord:
        if session.key(key_id, for_update=True) is None:
            raise NotFound(f"no key {key_id!r}")
        if session.revoke_key(key_id, now):
            session.record(now, actor, "key.revoke", key_id, {})
        record = session.key(key_id)
        assert record is not None
        return record

    return store.admin(work)


def rotate_key(store: Store, actor: str, key_id: str, grace_s: int) -> RotatedKey:
    """A new key with the old one's partner, label, rate limit and expiry; the old one keeps
    working `grace_s` seconds more (never past its own expiry), then is expired."""
    check_grace(grace_s)
    now = utcnow()

    def work(session: AdminSession) -> RotatedKey:
        old = _key_to_change(session, key_id)
        if old.status(now) == "expired":
            raise Conflict(f"key {key_id!r} has expired; create a new one instead")
        expiry = _stored_time(old.expires_at)
        old_expiry = now + timedelta(seconds=grace_s)
        if expiry is not None:
            old_expiry = min(old_expiry, expiry)
        new = _add_key(
            session,
            actor,
            old.partner_id,
            old.label,
            expiry,
            old.rate_limit,
            now,
            test=old.test,
            audited=False,
        )
        session.change_key(key_id, {"expires_at": old_expiry})
        session.record(
            now,
            actor,
            "key.rotate",
            key_id,
            {
                "new_key_id": new.record.key_id,
                "grace_seconds": grace_s,
                "old_key_expires_at": format_time(old_expiry),
            },
        )
        record = session.key(key_id)
        assert record is not None
        return RotatedKey(new, record)

    return store.admin(work)


def _stored_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


# -- the audit trail ------------------------------------------------------------------------------


def audit_entries(store: Store, since: datetime | None, limit: int) -> list[AuditRecord]:
    """The newest `limit` entries at or after `since`, newest first."""
    return store.admin(lambda session: session.audit(since, limit), write=False)
