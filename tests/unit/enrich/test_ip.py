"""Which address sent a request: the TCP peer, or a trusted proxy's forwarded hop.

Contract, ip_address/sender_ip: "the TCP peer, or the right-most untrusted X-Forwarded-For hop
when the peer is a trusted proxy"; THRAD_TRUSTED_PROXIES: "comma-separated CIDRs whose
X-Forwarded-For is believed; unset: none trusted".
"""

from __future__ import annotations

import ipaddress

import pytest

from thrad_events.enrich.ip import TrustedProxies, forwarded_for_values, normalize_ip, parse_ip

LB = ipaddress.ip_network("10.0.0.0/8")
V6_LB = ipaddress.ip_network("fd00::/8")


def test_without_trusted_proxies_the_peer_is_the_sender() -> None:
    """Contract: THRAD_TRUSTED_PROXIES unset -> none trusted: X-Forwarded-For is ignored."""
    proxies = TrustedProxies([])
    assert not proxies
    assert proxies.sender_ip("10.0.0.1", "203.0.113.5") == "10.0.0.1"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    """Contract: only a trusted proxy's X-Forwarded-For is believed (clients can forge it)."""
    proxies = TrustedProxies([LB])
    assert proxies.sender_ip("192.0.2.1", "203.0.113.5") == "192.0.2.1"


def test_a_trusted_peer_gives_the_forwarded_client() -> None:
    """Contract: the peer is a trusted proxy -> the X-Forwarded-For hop it appended."""
    proxies = TrustedProxies([LB])
    assert proxies.sender_ip("10.0.0.1", "203.0.113.5") == "203.0.113.5"


def test_the_right_most_untrusted_hop_is_the_sender() -> None:
    """Contract: the *right-most untrusted* hop; hops left of it were written by the client."""
    proxies = TrustedProxies([LB])
    chain = "198.51.100.66, 203.0.113.5, 10.0.0.3, 10.0.0.2"
    assert proxies.sender_ip("10.0.0.1", chain) == "203.0.113.5"


def test_a_forged_left_hop_does_not_win() -> None:
    """A client prepending a fake address gains nothing: its real address is what the LB saw."""
    proxies = TrustedProxies([LB])
    assert proxies.sender_ip("10.0.0.1", "1.1.1.1, 203.0.113.5") == "203.0.113.5"


def test_when_every_hop_is_trusted_the_left_most_is_the_sender() -> None:
    """A chain of only our own proxies ends at the first of them."""
    proxies = TrustedProxies([LB])
    assert proxies.sender_ip("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3"


def test_a_malformed_hop_stops_the_walk_at_the_last_trusted_address() -> None:
    """Nothing in the header is an error: a garbage hop ends the walk."""
    proxies = TrustedProxies([LB])
    assert proxies.sender_ip("10.0.0.1", "203.0.113.5, garbage") == "10.0.0.1"
    assert proxies.sender_ip("10.0.0.1", "garbage, 10.0.0.2") == "10.0.0.2"


def test_hops_with_ports_and_brackets_are_read() -> None:
    """Proxies write hops with ports and IPv6 brackets; those are addresses too."""
    proxies = TrustedProxies([LB, V6_LB])
    assert proxies.sender_ip("10.0.0.1", "203.0.113.5:4711") == "203.0.113.5"
    assert proxies.sender_ip("fd00::1", "[2001:db8::17]:443") == "2001:db8::17"


def test_an_oversized_header_is_ignored() -> None:
    """A header far longer than any real chain is not believed at all."""
    proxies = TrustedProxies([LB])
    assert proxies.sender_ip("10.0.0.1", "203.0.113.5," * 2000) == "10.0.0.1"


def test_rfc7239_forwarded_is_read_when_there_is_no_x_forwarded_for() -> None:
    """A proxy speaking RFC 7239 Forwarded is believed like one speaking X-Forwarded-For."""
    proxies = TrustedProxies([LB])
    header = 'for=198.51.100.66, for="[2001:db8::17]:4711";proto=https'
    assert proxies.sender_ip("10.0.0.1", None, header) == "2001:db8::17"


def test_ipv4_mapped_peer_is_matched_against_ipv4_networks() -> None:
    """A dual-stack socket reports ::ffff:10.0.0.1; it is the trusted 10.0.0.1."""
    proxies = TrustedProxies([LB])
    assert proxies.is_trusted("::ffff:10.0.0.1")
    assert proxies.sender_ip("::ffff:10.0.0.1", "203.0.113.5") == "203.0.113.5"


def test_no_peer_gives_no_sender() -> None:
    """A unix-socket request has no peer address."""
    assert TrustedProxies([LB]).sender_ip(None, "203.0.113.5") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:8080", "192.0.2.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::1"),
    ],
)
def test_parse_ip_reads_the_forms_proxies_write(text: str, expected: str) -> None:
    """Addresses as proxies and sockets write them are normalised."""
    assert normalize_ip(text) == expected


@pytest.mark.parametrize(
    "text", ["", "unknown", "example.com", "999.1.1.1", "1.2.3.4:port", "[::1"]
)
def test_parse_ip_refuses_what_is_not_an_address(text: str) -> None:
    """Anything but an address is None, never an exception."""
    assert parse_ip(text) is None


def test_forwarded_values_in_order() -> None:
    """RFC 7239: the for= of each element, left to right; an element without for is None."""
    assert forwarded_for_values("for=192.0.2.1;proto=http, proto=https, for=unknown") == [
        "192.0.2.1",
        None,
        "unknown",
    ]
