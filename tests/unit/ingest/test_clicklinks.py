"""Signed click links and the landing redirect.

Contract: GET /v1/click (a signed link) -> 302 to the landing URL with thrad_click_id, thrad_exp,
thrad_sig and thrad_bid_id (when the link carries a bid) appended, the landing URL's own query
and fragment kept. A bad or missing signature: 400, and no redirect.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from thrad_events.errors import BadClickLink
from thrad_events.ingest.clicklinks import (
    LINK_FIELDS,
    ClickLink,
    check_landing_url,
    click_signature,
    landing_redirect,
    sign_link,
    verify_link,
)

SECRET = "unit-test-click-secret-0123456789"
BASE = "https://events.thrad.ai"
LINK = ClickLink(
    url="https://shop.example.com/landing?utm_source=thrad#top",
    tag_id="adv_001",
    campaign_id="cmp_1",
    ad_id="ad_1",
    bid_id="bid_1",
    impression_id="imp_1",
)


def _query(link: ClickLink, secret: str = SECRET) -> str:
    url = sign_link(link, secret, BASE)
    parts = urlsplit(url)
    assert parts.path == "/v1/click"
    return parts.query


def _pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def _signed(fields: dict[str, str]) -> str:
    """A query signed the way the server signs, for links the CLI itself would refuse."""
    message = "\n".join(f"{name}={fields.get(name, '')}" for name in LINK_FIELDS)
    sig = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "sig": sig})


def test_a_signed_link_verifies_to_its_fields() -> None:
    """Contract: `clicks link` prints a signed link that the server accepts."""
    assert verify_link(_query(LINK), SECRET) == LINK


def test_a_link_with_only_a_landing_url_verifies() -> None:
    """Every field but the landing URL is optional."""
    link = ClickLink(url="https://shop.example.com/")
    assert verify_link(_query(link), SECRET) == link


def test_sign_link_uses_the_base_url() -> None:
    """`clicks link --base-url URL` prints a link to where this service is reached."""
    url = sign_link(LINK, SECRET, "http://127.0.0.1:8080/")
    assert url.startswith("http://127.0.0.1:8080/v1/click?")


@pytest.mark.parametrize("field", LINK_FIELDS)
def test_tampering_with_any_field_breaks_the_signature(field: str) -> None:
    """Contract: a bad signature -> 400, no redirect; every field is covered by the HMAC."""
    pairs = _pairs(_query(LINK))
    tampered = [(k, v + "x" if k == field else v) for k, v in pairs]
    with pytest.raises(BadClickLink):
        verify_link(urlencode(tampered), SECRET)


@pytest.mark.parametrize("field", [f for f in LINK_FIELDS if f != "url"])
def test_adding_a_field_to_a_signed_link_breaks_the_signature(field: str) -> None:
    """A field the signer did not put in cannot be added afterwards."""
    link = ClickLink(url="https://shop.example.com/")
    query = _query(link) + "&" + urlencode({field: "injected"})
    with pytest.raises(BadClickLink):
        verify_link(query, SECRET)


def test_removing_a_field_from_a_signed_link_breaks_the_signature() -> None:
    """Dropping e.g. the bid from a signed link is tampering too."""
    pairs = [(k, v) for k, v in _pairs(_query(LINK)) if k != "bid_id"]
    with pytest.raises(BadClickLink):
        verify_link(urlencode(pairs), SECRET)


def test_a_tampered_signature_is_refused() -> None:
    """Contract: a bad signature -> 400."""
    pairs = _pairs(_query(LINK))
    forged = [(k, "0" * 64 if k == "sig" else v) for k, v in pairs]
    with pytest.raises(BadClickLink):
        verify_link(urlencode(forged), SECRET)


def test_a_link_signed_with_another_secret_is_refused() -> None:
    """Only links signed with this server's THRAD_CLICK_SECRET are accepted."""
    with pytest.raises(BadClickLink):
        verify_link(_query(LINK, "another-secret-0123456789abcdef"), SECRET)


@pytest.mark.parametrize("sig", [None, ""], ids=["no-sig", "empty-sig"])
def test_a_missing_signature_is_refused(sig: str | None) -> None:
    """Contract: a missing signature -> 400, no redirect."""
    pairs = [(k, v) for k, v in _pairs(_query(LINK)) if k != "sig"]
    if sig is not None:
        pairs.append(("sig", sig))
    with pytest.raises(BadClickLink):
        verify_link(urlencode(pairs), SECRET)


@pytest.mark.parametrize("field", [*LINK_FIELDS, "sig"])
def test_a_repeated_parameter_is_refused(field: str) -> None:
    """A duplicated parameter could be read differently by two parsers: refused."""
    query = _query(LINK)
    value = dict(_pairs(query))[field]
    with pytest.raises(BadClickLink):
        verify_link(query + "&" + urlencode({field: value}), SECRET)


def test_an_unknown_parameter_is_refused() -> None:
    """Nothing unsigned rides along on a click link."""
    with pytest.raises(BadClickLink):
        verify_link(_query(LINK) + "&utm_source=x", SECRET)


def test_a_malformed_query_is_refused() -> None:
    """A query that does not parse is a bad link, not a crash."""
    with pytest.raises(BadClickLink):
        verify_link("url&&=", SECRET)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://shop.example.com/",
        "data:text/html,<script>1</script>",
        "//shop.example.com/",
        "/relative",
        "https://",
        "https://shop.example.com/\r\nSet-Cookie: x=1",
    ],
)
def test_a_non_http_landing_url_is_refused_when_signing(url: str) -> None:
    """The landing URL must be an absolute http(s) URL: no javascript:, no open redirect."""
    with pytest.raises(BadClickLink):
        sign_link(ClickLink(url=url), SECRET, BASE)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://shop.example.com/", "/relative"])
def test_a_correctly_signed_non_http_landing_url_is_still_refused(url: str) -> None:
    """Even a validly signed link never redirects to a non-http(s) URL."""
    with pytest.raises(BadClickLink):
        verify_link(_signed({"url": url}), SECRET)


def test_a_signed_link_without_a_landing_url_is_refused() -> None:
    """A link must say where to go."""
    with pytest.raises(BadClickLink):
        verify_link(_signed({"tag_id": "adv_001"}), SECRET)


def test_check_landing_url_accepts_http_and_https() -> None:
    """http and https landing pages are what advertisers use."""
    assert check_landing_url("http://shop.example.com/") == "http://shop.example.com/"
    assert check_landing_url("https://shop.example.com/a?b=1") == "https://shop.example.com/a?b=1"


# -- the redirect -----------------------------------------------------------------------------


def test_redirect_appends_thrad_fields_and_keeps_query_and_fragment() -> None:
    """Contract: thrad_click_id, thrad_exp, thrad_sig, thrad_bid_id appended; query and fragment
    of the landing URL kept."""
    location = landing_redirect(
        "https://shop.example.com/p?a=1&b=two#section-2", "cid", 1771879200, "sig", "bid_1"
    )
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example.com", "/p")
    assert parts.fragment == "section-2"
    assert parse_qsl(parts.query) == [
        ("a", "1"),
        ("b", "two"),
        ("thrad_click_id", "cid"),
        ("thrad_exp", "1771879200"),
        ("thrad_sig", "sig"),
        ("thrad_bid_id", "bid_1"),
    ]


def test_redirect_without_a_bid_has_no_thrad_bid_id() -> None:
    """Contract: thrad_bid_id only when the link carries a bid."""
    location = landing_redirect("https://shop.example.com/", "cid", 1, "sig", None)
    assert "thrad_bid_id" not in dict(parse_qsl(urlsplit(location).query))


def test_redirect_of_a_landing_url_without_query_starts_one() -> None:
    """No stray '&' when the landing URL had no query of its own."""
    location = landing_redirect("https://shop.example.com/p", "cid", 1, "sig", None)
    assert location == "https://shop.example.com/p?thrad_click_id=cid&thrad_exp=1&thrad_sig=sig"


def test_redirect_keeps_an_encoded_landing_query_byte_for_byte() -> None:
    """The landing URL's own query is kept as it was, encoding included."""
    location = landing_redirect("https://shop.example.com/?q=a%20b&x=%2F", "cid", 1, "s", None)
    assert urlsplit(location).query.startswith("q=a%20b&x=%2F&")


def test_click_signature_covers_click_id_and_expiry() -> None:
    """Contract: thrad_sig is the HMAC of click id and expiry."""
    signature = click_signature(SECRET, "cid", 100)
    expected = hmac.new(SECRET.encode(), b"cid.100", hashlib.sha256).hexdigest()
    assert signature == expected
    assert click_signature(SECRET, "cid", 101) != signature
    assert click_signature(SECRET, "cie", 100) != signature
    assert click_signature("other-secret-0123456789", "cid", 100) != signature
