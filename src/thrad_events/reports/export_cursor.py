"""The cursor of a paged HTTP export: where the next page starts, opaque and signed.

A cursor carries the whole export it belongs to (table, partner, time window) and the key of the
next page's first row, encoded as base64url JSON with an HMAC-SHA256 of it. The server checks
the signature before reading anything in it, so a client can neither forge a cursor nor edit
one to reach another partner's rows or another window; a cursor stays valid as long as the
server's signing secret does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

import msgspec

from thrad_events.errors import IngestError, ValidationFailed, field_error
from thrad_events.instants import format_time
from thrad_events.store.export_keyset import Keyset

# Longer than any cursor the server makes (a partner id and three times are short).
MAX_CURSOR_CHARS = 1024
_VERSION = 1
# Derives the cursor key from the server's secret, apart from any other use of that secret.
_PURPOSE = b"thrad-events export cursor v1"


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    t: str
    p: str | None
    s: str | None
    u: str
    k: tuple[str, int]
    x: bool = False  # include_test


@dataclass(frozen=True, slots=True)
class ExportCursor:
    """Which export (table, partner or None for every partner, since, until) and where its
    next page starts."""

    table: str
    partner_id: str | None
    since: datetime | None
    until: datetime
    start: Keyset
    include_test: bool = False


class CursorSigner:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, cursor: ExportCursor) -> str:
        payload = msgspec.json.encode(
            _Payload(
                v=_VERSION,
                t=cursor.table,
                p=cursor.partner_id,
                s=format_time(cursor.since) if cursor.since is not None else None,
                u=format_time(cursor.until),
                k=cursor.start,
                x=cursor.include_test,
            )
        )
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, text: str) -> ExportCursor:
        """The cursor `text` names; a 422 on `cursor` for anything this server did not issue."""
        if len(text) > MAX_CURSOR_CHARS or text.count(".") != 1:
            raise _not_ours()
        body, mac = text.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise _not_ours() from None
        if not hmac.compare_digest(self._mac(payload), given):
            raise _not_ours()
        try:
            found = msgspec.json.decode(payload, type=_Payload)
            if found.v != _VERSION:
                raise _not_ours()
            return ExportCursor(
                table=found.t,
                partner_id=found.p,
                since=datetime.fromisoformat(found.s) if found.s is not None else None,
                until=datetime.fromisoformat(found.u),
                start=(found.k[0], found.k[1]),
                include_test=found.x,
            )
        except (msgspec.DecodeError, ValueError):
            # Signed by us yet unreadable: only a cursor of another server version.
            raise _not_ours() from None


def _not_ours() -> IngestError:
    return field_error(
        ValidationFailed, "cursor", "is not a cursor this server gave (copy it whole)"
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
