"""Server-side rules applied to every accepted row: tag_id derivation, params stamping, extras."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

SERVER_CHANNEL = "server"
INTEGRATION = "partner_s2s"
# Rows sent by the browser Tag from advertisers' pages.
WEB_CHANNEL = "web"
TAG_INTEGRATION = "tag"
DEFAULT_EVENT_TYPE = "purchase_completed"
# The params names the server writes over the client's (stamp_params).
STAMPED_PARAMS = ("integration", "partner_id", "api_key_label")

# Bounds for the sanitised copy of a conversion's unknown top-level fields.
EXTRA_MAX_DEPTH = 4
EXTRA_MAX_KEYS = 50
EXTRA_MAX_ITEMS = 50
EXTRA_MAX_KEY_CHARS = 128
EXTRA_MAX_STRING_CHARS = 1024

# C0 and C1 control characters; string values keep tab, line feed and carriage return (text
# may be multi-line), keys keep none of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_KEY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def host_of(url: str | None) -> str | None:
    """Lower-cased hostname of a URL, port dropped; None when there is none."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host or None


def derive_tag_id(
    tag_id: str | None, page_url: str | None, origin: str | None, referer: str | None
) -> str:
    """The given tag_id, else site:<host> from page_url, then Origin, then Referer."""
    if tag_id is not None and tag_id.strip():
        return tag_id
    for source in (page_url, origin, referer):
        if host := host_of(source):
            return f"site:{host}"
    return "site:unknown"


def canonical_click_id(click_id: str | None) -> str | None:
    """A UUID click_id in lower case, the form clicks are minted and stored in.

    RFC 9562: a UUID's hex digits are case-insensitive, so `1111...-ABCD` names the same click
    as `1111...-abcd`. Normalising on input keeps plain equality (and the indexes) for the click
    lookup, the (click_id, event_type, order_id) dedupe and report joins. Anything else is no
    click we minted and is kept as sent.
    """
    # islower(): already in lower case (as minted), nothing to change and no regex to run.
    if click_id is None or click_id.islower() or not _UUID.fullmatch(click_id):
        return click_id
    return click_id.lower()


def stamp_params(
    params: Mapping[str, Any] | None, partner_id: str, api_key_label: str
) -> dict[str, Any]:
    """The client's params with the server's auth metadata written over its own names."""
    stamped = dict(params) if params else {}
    stamped["integration"] = INTEGRATION
    stamped["partner_id"] = partner_id
    stamped["api_key_label"] = api_key_label
    return stamped


def stamp_tag_params(params: Mapping[str, Any] | None, partner_id: str) -> dict[str, Any]:
    """A browser Tag's params: the partner comes from the tag's registration, never the page."""
    stamped = dict(params) if params else {}
    stamped["integration"] = TAG_INTEGRATION
    stamped["partner_id"] = partner_id
    return stamped


def sanitize_extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A bounded copy of unknown fields: control characters stripped, depth and size capped."""
    return _sanitize_object(fields, 1)


def _sanitize_object(obj: Mapping[str, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if len(out) >= EXTRA_MAX_KEYS:
            break
        clean_key = _KEY_CONTROL.sub("", str(key))[:EXTRA_MAX_KEY_CHARS]
        if clean_key:
            out[clean_key] = _sanitize_value(value, depth)
    return out


def _sanitize_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _clean_text(value)[:EXTRA_MAX_STRING_CHARS]
    if value is None or isinstance(value, bool | int | Decimal | float):
        return value
    if depth >= EXTRA_MAX_DEPTH:
        return None  # deeper structure is dropped rather than stored unbounded
    if isinstance(value, Mapping):
        return _sanitize_object(value, depth + 1)
    if isinstance(value, list):
        return [_sanitize_value(item, depth + 1) for item in value[:EXTRA_MAX_ITEMS]]
    return None


def _clean_text(text: str) -> str:
    return _CONTROL.sub("", text)
