"""The server's own rules for a row: tag_id derivation, params stamping, params.extra.

Contract: "tag_id omitted, null, empty or all spaces -> derived site:<host> from page_url, then
the Origin header, then the Referer header, else site:unknown. <host> is the lower-cased
hostname, port dropped." and "params.integration = partner_s2s, params.partner_id,
params.api_key_label are stamped by the server over anything the client put under those names.
The client's other params are kept."
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from thrad_events.ingest.normalize import (
    EXTRA_MAX_DEPTH,
    EXTRA_MAX_ITEMS,
    EXTRA_MAX_KEY_CHARS,
    EXTRA_MAX_KEYS,
    EXTRA_MAX_STRING_CHARS,
    canonical_click_id,
    derive_tag_id,
    host_of,
    sanitize_extra,
    stamp_params,
)

PAGE = "https://shop.example.com/checkout"
ORIGIN = "https://origin.example.org"
REFERER = "https://referer.example.net/some/page?q=1"

# -- tag_id -----------------------------------------------------------------------------------


def test_given_tag_id_is_kept() -> None:
    """Seed: tag_id is the client's tag/pixel identifier; when given it is stored as sent."""
    assert derive_tag_id("adv_001", PAGE, ORIGIN, REFERER) == "adv_001"


@pytest.mark.parametrize("tag_id", [None, "", " ", "   \t "], ids=["null", "empty", "space", "ws"])
def test_missing_or_blank_tag_id_is_derived_from_page_url(tag_id: str | None) -> None:
    """Contract: tag_id omitted, null, empty or all spaces -> site:<host> of page_url."""
    assert derive_tag_id(tag_id, PAGE, ORIGIN, REFERER) == "site:shop.example.com"


def test_without_page_url_the_origin_header_is_used() -> None:
    """Contract: ... from page_url, *then the Origin header* ..."""
    assert derive_tag_id(None, None, ORIGIN, REFERER) == "site:origin.example.org"


def test_without_page_url_and_origin_the_referer_header_is_used() -> None:
    """Contract: ... then the Referer header ..."""
    assert derive_tag_id(None, None, None, REFERER) == "site:referer.example.net"


def test_without_any_source_tag_id_is_site_unknown() -> None:
    """Contract: ... else site:unknown."""
    assert derive_tag_id(None, None, None, None) == "site:unknown"


@pytest.mark.parametrize(
    ("page_url", "origin", "referer", "expected"),
    [
        ("not a url", ORIGIN, REFERER, "site:origin.example.org"),
        ("", None, REFERER, "site:referer.example.net"),
        (None, "null", REFERER, "site:referer.example.net"),
        ("/relative/path", None, None, "site:unknown"),
        ("http://[::1", None, None, "site:unknown"),
    ],
    ids=["junk-page-url", "empty-page-url", "opaque-origin", "relative", "broken-ipv6"],
)
def test_a_source_without_a_host_is_skipped(
    page_url: str | None, origin: str | None, referer: str | None, expected: str
) -> None:
    """Contract: the first of page_url, Origin, Referer *with a host* gives the tag_id."""
    assert derive_tag_id(None, page_url, origin, referer) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Shop.Example.COM/checkout", "shop.example.com"),
        ("https://shop.example.com:8443/checkout", "shop.example.com"),
        ("http://SHOP.example.com:80", "shop.example.com"),
        ("https://user:pw@shop.example.com:1/x", "shop.example.com"),
        ("https://[2001:DB8::1]:8443/x", "2001:db8::1"),
    ],
)
def test_derived_host_is_lower_cased_and_port_dropped(url: str, host: str) -> None:
    """Contract: <host> is the lower-cased hostname, port dropped."""
    assert host_of(url) == host
    assert derive_tag_id(None, url, None, None) == f"site:{host}"


def test_origin_host_is_lower_cased_and_port_dropped() -> None:
    """Contract: the same host rule applies to the Origin header."""
    assert derive_tag_id("  ", None, "https://App.Example.com:3000", None) == "site:app.example.com"


# -- params stamping --------------------------------------------------------------------------


def test_params_are_stamped_with_the_auth_metadata() -> None:
    """Seed: Thrad stamps integration: partner_s2s, partner_id, api_key_label into params."""
    assert stamp_params(None, "ptn_1", "shop-backend") == {
        "integration": "partner_s2s",
        "partner_id": "ptn_1",
        "api_key_label": "shop-backend",
    }


def test_stamping_overwrites_the_clients_values_of_those_names() -> None:
    """Contract: stamped by the server over anything the client put under those names."""
    stamped = stamp_params(
        {"integration": "tag", "partner_id": "someone-else", "api_key_label": "forged"},
        "ptn_1",
        "shop-backend",
    )
    assert stamped["integration"] == "partner_s2s"
    assert stamped["partner_id"] == "ptn_1"
    assert stamped["api_key_label"] == "shop-backend"


def test_stamping_keeps_the_clients_other_params() -> None:
    """Contract: the client's other params are kept (Events API example's params bag)."""
    client = {"content_id": "sku_123", "quantity": 2, "value": Decimal("58.00"), "nested": {"a": 1}}
    stamped = stamp_params(client, "ptn_1", "label")
    assert {k: stamped[k] for k in client} == client


def test_stamping_does_not_change_the_clients_object() -> None:
    """The request's own params are left as parsed (a batch may reuse them)."""
    client = {"integration": "tag", "step": "shipping"}
    stamp_params(client, "ptn_1", "label")
    assert client == {"integration": "tag", "step": "shipping"}


# -- params.extra -----------------------------------------------------------------------------


def test_extra_keeps_plain_values_as_sent() -> None:
    """Seed: additional top-level fields are stored under params.extra ('customer_tier')."""
    fields = {"customer_tier": "gold", "n": 3, "ok": True, "none": None, "v": Decimal("1.50")}
    assert sanitize_extra(fields) == fields


def test_extra_strings_lose_control_characters_but_keep_line_breaks_and_tabs() -> None:
    """Seed: extra fields are stored in *sanitized* form: control characters removed."""
    extra = sanitize_extra({"note": "a\x00b\x1bc\x7fd\x85e\tf\ng\rh"})
    assert extra == {"note": "abcde\tf\ng\rh"}


def test_extra_keys_lose_every_control_character() -> None:
    """Sanitized: a key never carries control characters (line breaks included)."""
    assert sanitize_extra({"ti\ner\x00": "gold"}) == {"tier": "gold"}


def test_extra_key_made_only_of_control_characters_is_dropped() -> None:
    """Sanitized: a key that is nothing but control characters is not stored."""
    assert sanitize_extra({"\x00\x01": "x", "kept": 1}) == {"kept": 1}


def test_extra_nested_deeper_than_the_limit_is_cut() -> None:
    """Sanitized: nesting is capped; what is deeper is dropped (None), not stored unbounded."""
    value: object = "leaf"
    for _ in range(EXTRA_MAX_DEPTH + 2):
        value = {"k": value}
    extra = sanitize_extra({"deep": value})
    depth = 0
    node: object = extra
    while isinstance(node, dict):
        node = node["k"] if "k" in node else node["deep"]
        depth += 1
    assert node is None
    assert depth == EXTRA_MAX_DEPTH


def test_extra_number_of_keys_is_capped() -> None:
    """Sanitized: at most EXTRA_MAX_KEYS fields are kept."""
    extra = sanitize_extra({f"k{i}": i for i in range(EXTRA_MAX_KEYS + 25)})
    assert len(extra) == EXTRA_MAX_KEYS
    assert list(extra) == [f"k{i}" for i in range(EXTRA_MAX_KEYS)]


def test_extra_list_length_is_capped() -> None:
    """Sanitized: a list keeps at most EXTRA_MAX_ITEMS items."""
    extra = sanitize_extra({"items": list(range(EXTRA_MAX_ITEMS * 3))})
    assert extra["items"] == list(range(EXTRA_MAX_ITEMS))


def test_extra_long_strings_and_keys_are_truncated() -> None:
    """Sanitized: strings and keys are cut to their maximum length."""
    extra = sanitize_extra({"k" * (EXTRA_MAX_KEY_CHARS + 10): "v" * (EXTRA_MAX_STRING_CHARS * 2)})
    [(key, value)] = extra.items()
    assert key == "k" * EXTRA_MAX_KEY_CHARS
    assert value == "v" * EXTRA_MAX_STRING_CHARS


def test_extra_strings_inside_lists_and_objects_are_sanitized_too() -> None:
    """Sanitized all the way down, not only at the top level."""
    extra = sanitize_extra({"tags": ["a\x00b", {"c\x01": "d\x02e"}]})
    assert extra == {"tags": ["ab", {"c": "de"}]}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("11111111-1111-4111-8111-11111111ABCD", "11111111-1111-4111-8111-11111111abcd"),
        ("11111111-1111-4111-8111-11111111abcd", "11111111-1111-4111-8111-11111111abcd"),
        ("Partner-Click-7", "Partner-Click-7"),
        ("11111111111141118111111111111ABC", "11111111111141118111111111111ABC"),
        (None, None),
    ],
)
def test_a_uuid_click_id_is_lower_case_and_any_other_is_kept(
    sent: str | None, stored: str | None
) -> None:
    """RFC 9562: a UUID's hex digits are case-insensitive; clicks are minted lower-case."""
    assert canonical_click_id(sent) == stored
