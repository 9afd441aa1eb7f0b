"""Which address sent a request: the TCP peer, or the hop a trusted proxy forwarded for.

Proxies say whom they forwarded for in X-Forwarded-For (a comma-separated list of addresses,
each proxy appending its peer) or in RFC 7239's Forwarded (`for=192.0.2.60;proto=https,
for="[2001:db8::17]:4711"`). Only a peer inside THRAD_TRUSTED_PROXIES is believed, and then only
up to the first hop that is not itself a trusted proxy: everything left of that hop was written
by the client and could be forged. Nothing a client sends in these headers is ever an error: a
malformed hop ends the walk, a malformed or oversized header is ignored.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from thrad_events.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A longer header is not something a real proxy chain writes: it is ignored whole.
MAX_HEADER_CHARS = 8192
# At most this many hops are walked (each one a trusted proxy but the last).
MAX_HOPS = 32
# The longest text an address (with brackets, zone and port) can honestly take.
_MAX_ADDRESS_CHARS = 64
_PORT = re.compile(r"[0-9]{1,5}|_[A-Za-z0-9._-]{1,32}")  # RFC 7239 node-port, obfuscated too
_V4_MASK_24 = 0xFFFF_FF00
_V6_MASK_48 = ((1 << 48) - 1) << 80

# One RFC 7239 token at a time: a separator, or a name=value pair whose value is a token or a
# quoted-string. Values are read leniently (an unquoted IPv6 with brackets is accepted).
_FORWARDED_TOKEN = re.compile(
    r"""[ \t]*(?:
        (?P<sep>[;,])
      | (?P<name>[!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^;,"\s]*))
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """An address as proxies and sockets write it, or None for anything else.

    Accepts `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`
    and zone ids (`fe80::1%eth0`, dropped). An IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a
    dual-stack socket reports) becomes the IPv4 address it stands for.
    """
    text = text.strip()
    if not text or len(text) > _MAX_ADDRESS_CHARS or not text.isascii():
        return None
    if text.startswith("["):
        host, closing, rest = text[1:].partition("]")
        if not closing or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _PORT.fullmatch(port):
            return None
    else:
        host = text
    host = host.partition("%")[0]
    try:
        return canonical_ip(ipaddress.ip_address(host))
    except ValueError:
        return None


def canonical_ip(address: IPAddress) -> IPAddress:
    """The address every row stores and geo looks up: an IPv4-mapped IPv6 (`::ffff:192.0.2.1`,
    what a dual-stack socket reports) is the IPv4 address it stands for, and an IPv6 zone id
    (`fe80::1%eth0`, meaningful only on the sender's host) is dropped."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def normalize_ip(text: str | None) -> str | None:
    """The canonical text of an address (see parse_ip), or None when it is not one."""
    if text is None:
        return None
    address = parse_ip(text)
    return None if address is None else str(address)


def truncate_ip(text: str) -> str | None:
    """The address with its host part zeroed: IPv4 to its /24, IPv6 to its /48."""
    address = parse_ip(text)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(address) & _V4_MASK_24))
    return str(ipaddress.IPv6Address(int(address) & _V6_MASK_48))


def forwarded_for_values(header: str) -> list[str | None] | None:
    """The `for=` value of each element of an RFC 7239 Forwarded header, left to right.

    An element without `for` (or with it twice) gives None. A header that does not parse gives
    None: it is ignored rather than half-believed.
    """
    values: list[str | None] = []
    current: str | None = None
    seen_for = 0
    in_element = False
    header = header.strip()
    position = 0
    end = len(header)
    while position < end:
        match = _FORWARDED_TOKEN.match(header, position)
        if match is None:
            return None
        position = match.end()
        separator = match["sep"]
        if separator == ",":
            if in_element:  # empty list elements (",,") are allowed and skipped
                values.append(current if seen_for == 1 else None)
            current, seen_for, in_element = None, 0, False
            continue
        if separator == ";":
            continue
        in_element = True
        if match["name"].lower() == "for":
            seen_for += 1
            quoted = match["quoted"]
            current = _ESCAPE.sub(r"\1", quoted) if quoted is not None else match["token"]
    if in_element:
        values.append(current if seen_for == 1 else None)
    return values


class TrustedProxies:
    """Believes X-Forwarded-For or Forwarded only from peers inside the configured networks."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def is_trusted(self, address: str) -> bool:
        ip = parse_ip(address)
        return ip is not None and self._trusts(ip)

    def _trusts(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self._networks)

    def sender_ip(
        self, peer: str | None, forwarded_for: str | None, forwarded: str | None = None
    ) -> str | None:
        """The right-most forwarded hop that is not a trusted proxy, else the peer.

        X-Forwarded-For is read when present, else Forwarded: a proxy that maintains only one
        of them passes the other through as the client wrote it. A malformed hop ends the walk
        and the last address we could vouch for is returned; a malformed header is ignored.
        """
        if peer is None:
            return None
        peer_ip = parse_ip(peer)
        if peer_ip is None:
            return None
        if not self._networks or not (forwarded_for or forwarded) or not self._trusts(peer_ip):
            return str(peer_ip)
        hops = _hops(forwarded_for, forwarded)
        candidate = peer_ip
        for hop in hops[: -MAX_HOPS - 1 : -1]:
            ip = parse_ip(hop) if hop is not None else None
            if ip is None:
                break
            candidate = ip
            if not self._trusts(ip):
                break
        return str(candidate)


def _hops(forwarded_for: str | None, forwarded: str | None) -> list[str | None]:
    """The forwarded hops, left to right, from whichever header is there (XFF first)."""
    if forwarded_for and len(forwarded_for) <= MAX_HEADER_CHARS:
        # RFC 9110 list syntax: empty elements are allowed and carry nothing.
        return [hop for hop in forwarded_for.split(",") if hop.strip()]
    if forwarded_for:
        return []
    if forwarded and len(forwarded) <= MAX_HEADER_CHARS:
        return forwarded_for_values(forwarded) or []
    return []
