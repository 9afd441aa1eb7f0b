"""API keys: generation, hashing, and the short-lived cache every request authenticates through.

A key is `thr_` followed by 43 URL-safe characters (32 random bytes); a test key's secret starts
`thr_test_` (its rows are stored flagged test, see store/test_rows.py). Only its SHA-256 is stored:
with 256 bits of entropy a slow hash adds nothing. Lookups are cached for `ttl_s` seconds, which
bounds how long a revoked key keeps working on a process; expiry is checked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from thrad_events.errors import Unauthorized, Unavailable
from thrad_events.instants import utcnow
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError
from thrad_events.store.records import ApiKeyRecord

KEY_PREFIX = "thr_"
TEST_KEY_PREFIX = "thr_test_"
KEY_BYTES = 32


def generate_api_key(*, test: bool = False) -> str:
    return (TEST_KEY_PREFIX if test else KEY_PREFIX) + secrets.token_urlsafe(KEY_BYTES)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeySecret:
    """A new key's id and secret, with what is stored of the secret: its hash and prefix."""

    key_id: str
    api_key: str
    key_hash: str
    key_prefix: str


def new_key_secret(test: bool = False) -> KeySecret:
    api_key = generate_api_key(test=test)
    prefix = TEST_KEY_PREFIX if test else KEY_PREFIX
    return KeySecret(
        "key_" + secrets.token_hex(8),
        api_key,
        hash_api_key(api_key),
        api_key[: len(prefix) + 4],
    )


def bearer_token(authorization: str | None, expected: str = "api key") -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized saying which
    token was `expected`."""
    if not authorization:
        raise Unauthorized("Authorization header is missing")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized(f"Authorization must be 'Bearer <{expected}>'")
    return token


def is_admin_token(token: str, admin_token: str | None) -> bool:
    """True when `token` is THRAD_ADMIN_TOKEN; never when none is configured."""
    if not admin_token:
        return False
    return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), admin_token.encode())


def token_fingerprint(token: str) -> str:
    """Who acted, for the audit trail: enough of the token's SHA-256 to tell one admin token
    from its successor, never the token."""
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


_REFUSED = {"revoked": "API key has been revoked", "expired": "API key has expired"}


class KeyCache:
    """Authenticates bearer tokens against the store, remembering answers for a few seconds."""

    def __init__(self, store: Store, *, ttl_s: float, max_entries: int = 10_000) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = OrderedDict()

    async def authenticate(self, token: str, *, touch: bool = True) -> ApiKeyRecord:
        """The active key `token` is, or Unauthorized; `touch=False` for a check that does not
        let the request in (last_used_at then stays)."""
        digest = hash_api_key(token)
        now = time.monotonic()
        cached = self._entries.get(digest)
        looked_up = False
        if cached is not None and now - cached[0] < self._ttl_s:
            record = cached[1]
        else:
            try:
                record = await self._store.find_key(digest)
            except StorageError as exc:
                # A shared database that is down or slow: 503 and retry, never a 500.
                raise Unavailable(f"API key lookup failed: {exc}") from exc
            self._remember(digest, now, record)
            looked_up = True
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise Unauthorized("API key is not valid")
        status = record.status()
        if status != "active":
            # Whose key it was, for the operator's log line: a revoked key still in use is
            # worth seeing. Not the partner's delivery (ingest/delivery.py counts valid keys').
            raise Unauthorized(_REFUSED[status]).sent_with(record)
        if looked_up and touch:
            # Only a key that was let in counts as used: a revoked key must not look in use.
            self._store.touch_key(record.key_id, utcnow())
        return record

    def _remember(self, digest: str, now: float, record: ApiKeyRecord | None) -> None:
        self._entries[digest] = (now, record)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
