"""Signed click links: minting them, checking them, and building the landing redirect.

A link is `/v1/click?url=<landing>&tag_id=..&campaign_id=..&ad_id=..&bid_id=..&impression_id=..
&sig=<hmac>`, where the HMAC-SHA256 covers every one of those fields, so no part of the link
(above all the landing URL) can be changed without the signature failing: the redirect can
never be used as an open redirect.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from thrad_events.errors import BadClickLink, BadClickSignature

LINK_FIELDS = ("url", "tag_id", "campaign_id", "ad_id", "bid_id", "impression_id")
MAX_URL_CHARS = 4096
MAX_FIELD_CHARS = 256


@dataclass(frozen=True, slots=True)
class ClickLink:
    url: str
    tag_id: str | None = None
    campaign_id: str | None = None
    ad_id: str | None = None
    bid_id: str | None = None
    impression_id: str | None = None

    def fields(self) -> dict[str, str]:
        return {name: value for name in LINK_FIELDS if (value := getattr(self, name)) is not None}


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _canonical(fields: dict[str, str]) -> str:
    # Every field in a fixed order, absent ones empty, so no two links share a message.
    return "\n".join(f"{name}={fields.get(name, '')}" for name in LINK_FIELDS)


def check_landing_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise BadClickLink(f"landing URL longer than {MAX_URL_CHARS} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise BadClickLink("landing URL contains control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadClickLink("landing URL must be an absolute http(s) URL")
    return url


def sign_link(link: ClickLink, secret: str, base_url: str) -> str:
    """The full click URL for `link`, signed with `secret`."""
    check_landing_url(link.url)
    fields = link.fields()
    query = urlencode({**fields, "sig": _mac(secret, _canonical(fields))})
    return f"{base_url.rstrip('/')}/v1/click?{query}"


def verify_link(query_string: str, secret: str) -> ClickLink:
    """Parse and verify a click link's query string; BadClickLink when anything is off."""
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise BadClickLink("click link query is malformed") from None
    fields: dict[str, str] = {}
    signature: str | None = None
    for name, value in pairs:
        if name == "sig":
            if signature is not None:
                raise BadClickLink("click link carries more than one signature")
            signature = value
        elif name in LINK_FIELDS:
            if name in fields:
                raise BadClickLink(f"click link repeats {name}")
            limit = MAX_URL_CHARS if name == "url" else MAX_FIELD_CHARS
            if len(value) > limit:
                raise BadClickLink(f"{name} is too long")
            fields[name] = value
        else:
            raise BadClickLink(f"click link has an unknown parameter {name!r}")
    if not signature:
        raise BadClickLink("click link is not signed")
    expected = _mac(secret, _canonical(fields))
    # Bytes: compare_digest refuses str with non-ASCII characters, which a client may send.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass")):
        raise BadClickLink("click link signature does not match")
    if "url" not in fields:
        raise BadClickLink("click link has no landing URL")
    check_landing_url(fields["url"])
    return ClickLink(**fields)


def click_signature(secret: str, click_id: str, expires_at: int) -> str:
    """thrad_sig: lets the browser Tag prove a click id and its expiry came from us."""
    return _mac(secret, f"{click_id}.{expires_at}")


def check_click_signature(
    secret: str, click_id: str, thrad_exp: object, thrad_sig: object, now: int
) -> None:
    """A browser conversion's proof that its click came through our redirect: thrad_sig must be
    the signature of (click_id, thrad_exp), and thrad_exp (Unix seconds, a number or its
    digits as the landing URL carried them) must not have passed. BadClickSignature else."""
    if isinstance(thrad_exp, str) and thrad_exp.isdigit() and len(thrad_exp) <= 12:
        thrad_exp = int(thrad_exp)
    if isinstance(thrad_exp, bool) or not isinstance(thrad_exp, int):
        raise BadClickSignature("thrad_exp must be the click's expiry, in Unix seconds")
    if not isinstance(thrad_sig, str) or not thrad_sig:
        raise BadClickSignature("thrad_sig is missing: a browser conversion needs its click's")
    expected = click_signature(secret, click_id, thrad_exp)
    if not hmac.compare_digest(expected.encode(), thrad_sig.encode("utf-8", "surrogatepass")):
        raise BadClickSignature("thrad_sig does not match click_id and thrad_exp")
    if thrad_exp <= now:
        raise BadClickSignature("the click has expired (thrad_exp has passed)")


def landing_redirect(
    landing_url: str, click_id: str, expires_at: int, signature: str, bid_id: str | None
) -> str:
    """The landing URL with thrad_* appended; its own query and fragment kept as they were."""
    parts = urlsplit(landing_url)
    added = {"thrad_click_id": click_id, "thrad_exp": str(expires_at), "thrad_sig": signature}
    if bid_id:
        added["thrad_bid_id"] = bid_id
    extra = urlencode(added)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
