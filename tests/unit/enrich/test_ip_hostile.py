"""enrich/ip.py against what a client may write in X-Forwarded-For and Forwarded, and truncation.

README (Enrichment): ip_address/sender_ip is "the TCP peer, or the right-most untrusted
X-Forwarded-For hop when the peer is a trusted proxy". Whatever a client writes in these
headers, the answer is an address we can vouch for, and never an error. (test_ip.py holds the
contract's plain cases.)
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thrad_events.config import parse_networks
from thrad_events.enrich.ip import (
    MAX_HEADER_CHARS,
    TrustedProxies,
    forwarded_for_values,
    truncate_ip,
)

PROXIES = TrustedProxies(parse_networks("10.0.0.0/8, 2001:db8:ffff::/48", "test"))
PROXY = "10.0.0.1"
PROXY6 = "2001:db8:ffff::1"


def test_an_untrusted_peer_is_the_sender_whatever_it_forwards() -> None:
    assert PROXIES.sender_ip("203.0.113.9", "198.51.100.1", "for=198.51.100.2") == "203.0.113.9"


def test_a_peer_that_is_not_an_address_is_not_stored() -> None:
    assert PROXIES.sender_ip("testclient", None) is None


def test_a_dual_stack_peer_is_stored_as_its_ipv4_address() -> None:
    assert PROXIES.sender_ip("::ffff:203.0.113.9", None) == "203.0.113.9"


def test_a_trusted_ipv6_proxy_forwarding_an_ipv6_client() -> None:
    assert PROXIES.sender_ip(PROXY6, "2001:218::1") == "2001:218::1"


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        ("2001:0218:0000::0001", "2001:218::1"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("  198.51.100.7  ", "198.51.100.7"),
        ("[198.51.100.7]:80", "198.51.100.7"),
    ],
)
def test_forwarded_hops_are_stored_in_canonical_form(hop: str, expected: str) -> None:
    assert PROXIES.sender_ip(PROXY, hop) == expected


def test_empty_list_elements_are_skipped() -> None:
    assert PROXIES.sender_ip(PROXY, "198.51.100.7,, ,") == "198.51.100.7"


@pytest.mark.parametrize(
    "hop",
    [
        "unknown",
        "_hidden",
        "198.51.100.7:99999999",
        "[2001:218::1]x",
        "300.1.1.1",
        "010.1.1.1",
        "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits: int() takes them
        "198.51.100.7\x00",
        "1" * 5000,
        "<script>alert(1)</script>",
        "198.51.100.7; DROP TABLE events",
    ],
)
def test_a_malformed_hop_ends_the_walk_at_the_last_address_vouched_for(hop: str) -> None:
    assert PROXIES.sender_ip(PROXY, hop) == PROXY
    assert PROXIES.sender_ip(PROXY, f"6.6.6.6, {hop}, 10.3.3.3") == "10.3.3.3"


def test_a_header_just_over_the_limit_is_ignored() -> None:
    header = "198.51.100.7, " + "10.1.1.1, " * (MAX_HEADER_CHARS // 10)
    assert len(header) > MAX_HEADER_CHARS
    assert PROXIES.sender_ip(PROXY, header) == PROXY


def test_a_long_run_of_forged_trusted_hops_is_walked_only_so_far() -> None:
    header = "198.51.100.7, " + ", ".join(["10.1.1.1"] * 500)
    assert len(header) <= MAX_HEADER_CHARS
    assert PROXIES.sender_ip(PROXY, header) == "10.1.1.1"


# -- RFC 7239 Forwarded -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('For="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
        ('for=198.51.100.17;by="10.0.0.2,for=6.6.6.6"', "198.51.100.17"),
        ("proto=https; FOR = 192.0.2.60", "192.0.2.60"),
        ('for="192.0.2.60:8080"', "192.0.2.60"),
        ('for="\\1\\9\\2.0.2.60"', "192.0.2.60"),
        ("for=198.51.100.17, for=10.0.0.9", "198.51.100.17"),
    ],
)
def test_forwarded_for_is_honoured_like_x_forwarded_for(header: str, expected: str) -> None:
    assert PROXIES.sender_ip(PROXY, None, header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "for=unknown",
        "for=_hidden",
        "proto=https",
        "for=192.0.2.60;for=192.0.2.61",
        'for="192.0.2.60',
        "for",
        "=192.0.2.60",
        "for=192.0.2.60 garbage",
        "f\x00r=192.0.2.60",
        "for=" + "9" * 10_000,
    ],
)
def test_a_forwarded_header_that_names_no_address_gives_the_peer(header: str) -> None:
    assert PROXIES.sender_ip(PROXY, None, header) == PROXY


def test_x_forwarded_for_wins_when_both_headers_are_sent() -> None:
    assert PROXIES.sender_ip(PROXY, "198.51.100.7", "for=192.0.2.60") == "198.51.100.7"


def test_forwarded_values_follow_rfc_7239_elements() -> None:
    assert forwarded_for_values(
        'for=192.0.2.43, for="[2001:db8:cafe::17]";proto=https,, proto=http, for=unknown'
    ) == ["192.0.2.43", "[2001:db8:cafe::17]", None, "unknown"]
    assert forwarded_for_values('for="unterminated') is None


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(st.none(), st.text(max_size=300)),
    st.one_of(st.none(), st.text(max_size=300)),
    st.sampled_from([PROXY, PROXY6, "203.0.113.9", "::ffff:10.0.0.1", "garbage", ""]),
)
def test_any_header_value_gives_an_address_or_none_never_an_error(
    forwarded_for: str | None, forwarded: str | None, peer: str
) -> None:
    sender = PROXIES.sender_ip(peer, forwarded_for, forwarded)
    if sender is not None:
        assert str(ipaddress.ip_address(sender)) == sender


# -- truncation (consent) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("81.2.69.142", "81.2.69.0"),
        ("81.2.69.0", "81.2.69.0"),
        ("2001:218:1234:5678:9abc::1", "2001:218:1234::"),
        ("2001:db8::1", "2001:db8::"),
        ("::ffff:81.2.69.142", "81.2.69.0"),
    ],
)
def test_truncation_keeps_ipv4_slash_24_and_ipv6_slash_48(address: str, truncated: str) -> None:
    assert truncate_ip(address) == truncated


def test_truncating_what_is_not_an_address_gives_none() -> None:
    assert truncate_ip("nope") is None
