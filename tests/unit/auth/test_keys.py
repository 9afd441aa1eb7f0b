"""API keys: their shape and entropy, the stored hash, and reading the bearer token.

Seed: "Authorization: Bearer <YOUR_API_KEY>"; "If the key is missing, invalid, revoked, or
expired, the API returns 401." Contract: "The secret is shown only here, never stored in clear."
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from thrad_events.auth.keys import (
    KEY_PREFIX,
    bearer_token,
    generate_api_key,
    hash_api_key,
    is_admin_token,
)
from thrad_events.errors import Unauthorized


def test_api_key_starts_with_thr_prefix() -> None:
    """Keys are recognisable as Thrad keys (and by secret scanners) by their thr_ prefix."""
    assert KEY_PREFIX == "thr_"
    assert generate_api_key().startswith("thr_")


def test_api_key_carries_at_least_32_random_bytes() -> None:
    """A key is unguessable: at least 256 bits of entropy after the prefix."""
    key = generate_api_key()
    body = key.removeprefix(KEY_PREFIX)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(raw) >= 32


def test_api_key_is_url_safe_text_without_spaces() -> None:
    """A key travels in an HTTP header and on a command line as it is."""
    key = generate_api_key()
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    assert set(key.removeprefix(KEY_PREFIX)) <= allowed


def test_api_keys_are_unique() -> None:
    """Every key created is a different secret."""
    keys = {generate_api_key() for _ in range(2000)}
    assert len(keys) == 2000


def test_hash_is_sha256_hex_of_the_key() -> None:
    """Contract: the secret is never stored in clear; what is stored is its SHA-256."""
    key = generate_api_key()
    digest = hash_api_key(key)
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert len(digest) == 64
    assert key not in digest
    assert key.removeprefix(KEY_PREFIX) not in digest


def test_hash_is_stable_and_tells_keys_apart() -> None:
    """The same key always finds its record; another key never does."""
    key, other = generate_api_key(), generate_api_key()
    assert hash_api_key(key) == hash_api_key(key)
    assert hash_api_key(key) != hash_api_key(other)


def test_hash_of_a_token_with_unpaired_surrogates_does_not_crash() -> None:
    """A hostile token that is not valid Unicode is still hashed (then simply not found)."""
    assert len(hash_api_key("thr_\udcff")) == 64


# -- bearer parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Bearer thr_abc", "bearer thr_abc", "BEARER thr_abc", "Bearer   thr_abc", " Bearer thr_abc "],
)
def test_bearer_token_is_read_from_the_authorization_header(header: str) -> None:
    """Seed: Authorization: Bearer <YOUR_API_KEY> (the scheme is case-insensitive, RFC 9110)."""
    assert bearer_token(header) == "thr_abc"


@pytest.mark.parametrize("header", [None, ""], ids=["absent", "empty"])
def test_missing_authorization_is_unauthorized(header: str | None) -> None:
    """Contract: Authorization missing -> 401 unauthorized."""
    with pytest.raises(Unauthorized) as caught:
        bearer_token(header)
    assert caught.value.outcome == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        "thr_abc",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Token thr_abc",
        "Bearerthr_abc",
    ],
)
def test_malformed_authorization_is_unauthorized(header: str) -> None:
    """Contract: Authorization malformed -> 401 unauthorized."""
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_admin_token_matches_only_when_configured() -> None:
    """THRAD_ADMIN_TOKEN unset: admin access is off, whatever token is sent."""
    assert is_admin_token("s3cret-admin-token", "s3cret-admin-token")
    assert not is_admin_token("s3cret-admin-token", None)
    assert not is_admin_token("", "")
    assert not is_admin_token("wrong", "s3cret-admin-token")
